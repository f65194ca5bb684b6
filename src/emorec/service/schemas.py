"""Request and response models of the JSON API (they make the OpenAPI document)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

METHODS = ("grad_x_input", "integrated_gradients", "lrp", "attention", "attention_raw", "random")
ExplainMethod = Literal[
    "grad_x_input", "integrated_gradients", "lrp", "attention", "attention_raw", "random"
]


class _Model(BaseModel):
    # Unknown fields are refused so a typo ("txts") is an error, not a silent default.
    model_config = ConfigDict(extra="forbid")


class ErrorResponse(BaseModel):
    """Every error: a plain sentence, plus the individual problems for validation errors."""

    detail: str = Field(examples=["texts: the list must hold at least one text."])
    errors: list[dict[str, object]] | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    """Whether the service can answer predictions: model loaded and database reachable."""

    ready: bool
    model: str | None = Field(examples=["dair-emotion"])
    labels: list[str] = Field(examples=[["sadness", "joy", "love", "anger", "fear", "surprise"]])
    multi_label: bool
    backend: str | None = Field(examples=["onnx"])
    version: str = Field(examples=["0.1.0"])
    database: Literal["ok", "unavailable"]


class PredictRequest(_Model):
    texts: list[str] = Field(
        min_length=1,
        description="Texts to classify (at most EMOREC_MAX_TEXTS_PER_REQUEST, each at most "
        "EMOREC_MAX_CHARS_PER_TEXT characters).",
        examples=[["i feel so happy today", "this is so unfair"]],
    )
    top_k: int | None = Field(
        None, ge=1, description="Return only the k most probable emotions per text."
    )
    store: bool = Field(True, description="Keep the predictions in the history.")


class Score(BaseModel):
    """One emotion's probability, as a transformers text-classification pipeline gives it."""

    label: str = Field(examples=["joy"])
    score: float = Field(ge=0, le=1, description="The probability.", examples=[0.93])


def ranked_scores(scores: Mapping[str, float]) -> list[Score]:
    """``{label: probability}`` as ``[{"label", "score"}]``, highest first."""
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    return [Score(label=label, score=score) for label, score in ranked]


_SCORES_EXAMPLE = [[{"label": "joy", "score": 0.93}, {"label": "love", "score": 0.04}]]


class TextPrediction(BaseModel):
    text: str
    label: str | None = Field(
        description="The most probable decided emotion (null: multi-label, none decided)."
    )
    labels: list[str] = Field(description="Every decided emotion (calibrated decision rule).")
    scores: list[Score] = Field(
        description="The probability of each emotion (only the top_k best when asked), highest "
        "first.",
        examples=_SCORES_EXAMPLE,
    )


class PredictResponse(BaseModel):
    model: str
    multi_label: bool
    predictions: list[TextPrediction]


class ExplainRequest(_Model):
    text: str = Field(min_length=1, examples=["i feel so alone tonight"])
    method: ExplainMethod = Field("lrp", description="Attribution method.")
    label: str | None = Field(None, description="Emotion to explain; default the predicted one.")


class WordScore(BaseModel):
    """One word the model saw, and the part of the request's text it was cleaned from."""

    word: str = Field(description="The word after cleaning, as the model saw it ('sad').")
    source: str = Field(
        description="The part of the text the word was cleaned from (':('), text[start:end]. "
        "Words cleaned from one part share it: an emoji's name, an expanded abbreviation."
    )
    start: int = Field(
        description="Offset of source in text, in Unicode code points (Python str indices), "
        "not UTF-16 code units: in JavaScript index Array.from(text), not text.slice()."
    )
    end: int = Field(description="End of source in text (exclusive), in code points.")
    score: float = Field(description="Relevance for the label (positive: supports it).")


class ExplainResponse(BaseModel):
    text: str
    label: str
    probability: float
    method: str
    words: list[WordScore]


class HistoryItem(BaseModel):
    id: int
    created_at: dt.datetime
    text: str
    label: str | None
    labels: list[str]
    scores: list[Score] = Field(
        description="The probability of each emotion, highest first.", examples=_SCORES_EXAMPLE
    )


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    total: int = Field(description="Items matching the filters, over all pages.")
    limit: int
    offset: int


class StatsBucket(BaseModel):
    start: dt.datetime
    total: int
    counts: dict[str, int]
    mean_probability: dict[str, float]


class Stats(BaseModel):
    labels: list[str]
    total: int
    counts: dict[str, int] = Field(description="Predictions per top emotion.")
    mean_probability: dict[str, float] = Field(description="Mean probability per emotion.")
    buckets: list[StatsBucket]
