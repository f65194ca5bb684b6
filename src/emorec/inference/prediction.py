"""What a classifier answers for one text, in emorec's and in the transformers pipeline's form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# "calibrated": the model directory's fitted rule; "argmax": the raw model (T = 1, argmax or the
# default threshold).
Decision = Literal["calibrated", "argmax"]


@dataclass
class Prediction:
    """The emotions of one text.

    ``labels`` are the decided emotions (exactly one for single-label models; zero or more for
    multi-label), ``label`` the most probable of them, ``scores`` label → probability, highest
    first (only the ``top_k`` best when asked).
    """

    text: str
    label: str | None
    labels: list[str]
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON types: ``{"text", "label", "labels", "scores"}``, with
        ``scores`` as :meth:`to_pipeline` gives them (``[{"label", "score"}]``, highest first),
        the one score format of the Python API, the HTTP API and the CLI's JSON."""
        return {
            "text": self.text,
            "label": self.label,
            "labels": list(self.labels),
            "scores": self.to_pipeline(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        """Inverse of :meth:`to_dict` (``scores`` as the ranked list or a label → score map)."""
        scores = data.get("scores") or {}
        if isinstance(scores, list):
            scores = {item["label"]: float(item["score"]) for item in scores}
        return cls(data["text"], data["label"], list(data["labels"]), dict(scores))

    def to_pipeline(self) -> list[dict[str, Any]]:
        """``[{"label", "score"}, ...]`` highest first, as a transformers pipeline gives."""
        return [{"label": label, "score": float(score)} for label, score in self.scores.items()]
