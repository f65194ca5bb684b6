"""``/v1/predict`` and ``/v1/explain``: the served model's decisions and word attributions."""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import insert

from emorec.service.db import PredictionRecord, prediction_rows, utcnow
from emorec.service.deps import ERRORS, ServiceState, StateDep, predict_api_key
from emorec.service.schemas import (
    ExplainRequest,
    ExplainResponse,
    PredictRequest,
    PredictResponse,
    TextPrediction,
    WordScore,
    ranked_scores,
)

if TYPE_CHECKING:
    from emorec.inference import EmotionClassifier

router = APIRouter(tags=["predict"], dependencies=[Depends(predict_api_key)], responses=ERRORS)


@router.post("/v1/predict", response_model=PredictResponse)
def predict(body: PredictRequest, state: StateDep) -> PredictResponse:
    """Classify one or many texts with the calibrated decision rule."""
    settings = state.settings
    classifier = state.classifier
    if len(body.texts) > settings.max_texts_per_request:
        raise HTTPException(
            413,
            f"Too many texts: {len(body.texts)}; at most {settings.max_texts_per_request} per "
            "request. Split them, or upload a file to /v1/jobs.",
        )
    for i, text in enumerate(body.texts):
        if len(text) > settings.max_chars_per_text:
            raise HTTPException(
                413,
                f"Text {i} has {len(text)} characters; the limit is {settings.max_chars_per_text}.",
            )
    n_labels = len(classifier.labels)
    if body.top_k is not None and body.top_k > n_labels:
        raise HTTPException(
            422, f"top_k must be between 1 and {n_labels} (the model's emotions); got {body.top_k}."
        )
    with state.predict_lock:
        predictions = classifier.predict(body.texts)
    if body.store and settings.store_history:
        with state.sessions.begin() as session:
            rows = prediction_rows(predictions, state.model_name, utcnow())
            session.execute(insert(PredictionRecord), rows)
    return PredictResponse(
        model=state.model_name,
        multi_label=classifier.label_space.multi_label,
        predictions=[
            TextPrediction(
                text=p.text,
                label=p.label,
                labels=p.labels,
                scores=ranked_scores(p.scores)[: body.top_k],
            )
            for p in predictions
        ],
    )


def _explainer(state: ServiceState) -> EmotionClassifier:
    """A PyTorch classifier for explanations (the served one may run ONNX)."""
    if state.classifier.model is not None:
        return state.classifier
    if state.explainer is None:
        from emorec.inference import EmotionClassifier

        state.explainer = EmotionClassifier.from_pretrained(
            state.settings.model_dir, backend="torch"
        )
    return state.explainer


@router.post("/v1/explain", response_model=ExplainResponse)
def explain(body: ExplainRequest, state: StateDep) -> ExplainResponse:
    """Word attributions for one text: which words drive the (or a given) emotion."""
    settings = state.settings
    if len(body.text) > settings.max_chars_per_text:
        raise HTTPException(
            413,
            f"The text has {len(body.text)} characters; the limit is "
            f"{settings.max_chars_per_text}.",
        )
    labels = state.classifier.labels
    if body.label is not None and body.label not in labels:
        raise HTTPException(
            422, f"label must be one of the model's emotions {labels}; got {body.label!r}."
        )
    with state.explain_lock:
        classifier = _explainer(state)
        # Explaining the served PyTorch model itself: predictions wait until it is done.
        shared = state.predict_lock if classifier is state.classifier else nullcontext()
        with shared:
            (explanation,) = classifier.explain(
                body.text, body.method, body.label, attentions=False
            )
    return ExplainResponse(
        text=body.text,
        label=explanation.target,
        probability=explanation.target_probability,
        method=explanation.method,
        words=[
            WordScore(word=word, source=source, start=start, end=end, score=float(score))
            for word, source, (start, end), score in zip(
                explanation.words,
                explanation.sources,
                explanation.spans,
                explanation.scores,
                strict=True,
            )
        ],
    )
