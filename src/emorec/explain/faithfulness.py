"""Faithfulness of an explanation: delete words by importance and watch the probability.

The deletion (perturbation) test of Samek et al. (2017): replace the sub-tokens of the k most
important words by ``[MASK]`` (``[PAD]`` when the tokenizer has no mask token; the length and
attention mask stay as they are), for k = 0 … n, and record the calibrated probability of the
explained emotion. A faithful explanation makes it fall fast. The same with the least important
words first should barely move it.

* ``aopc`` (area over the perturbation curve, most-important first): mean over the steps of
  p(full text) − p(k words removed). Higher = more faithful.
* ``aopc_least_first``: the same for least-important first. Lower = more faithful.
* ``area_between``: mean of (least-first − most-first) = ``aopc − aopc_least_first``.

All perturbed texts run as batches through ``classifier.backend``, so the test also works on an
ONNX classifier (for explanations computed with the PyTorch one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from emorec.calibration import DEFAULT_THRESHOLD
from emorec.errors import ConfigError, DataError
from emorec.explain.core import Explanation
from emorec.explain.words import ExplainableClassifier, encode_words

__all__ = ["DeletionCurve", "deletion_curve"]


@dataclass
class DeletionCurve:
    """Target probability as words are removed, most- and least-important first.

    ``removed[i]`` words are masked at step i (``fractions[i]`` of the words); step 0 is the
    full text. ``threshold`` is the probability ``target`` must reach to be decided, drawn on
    the plot: multi-label, its tuned threshold (:data:`~emorec.calibration.DEFAULT_THRESHOLD`
    when untuned). Single-label it is None: the decision is an argmax (with offsets), so no
    fixed probability decides, and a 0.5 line would mean nothing.
    """

    target: str
    method: str
    removed: list[int]
    fractions: list[float]
    most_first: list[float]
    least_first: list[float]
    aopc: float
    aopc_least_first: float
    area_between: float
    threshold: float | None

    @property
    def full_probability(self) -> float:
        return self.most_first[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _steps(n_words: int, max_steps: int) -> np.ndarray:
    """Words removed per step: every count 0 … n, or ``max_steps`` even fractions of n."""
    if n_words <= max_steps:
        return np.arange(n_words + 1)
    return np.unique(np.round(np.linspace(0, n_words, max_steps + 1)).astype(np.int64))


def _threshold(classifier: ExplainableClassifier, index: int) -> float | None:
    """The probability label ``index`` must pass to be decided; None when none does."""
    calibration = classifier.calibration
    if calibration.decision != "threshold":
        return None  # argmax, with or without offsets: no probability threshold
    if calibration.thresholds is not None:
        return float(calibration.thresholds[index])
    return DEFAULT_THRESHOLD  # what Calibration.decide uses for an untuned multi-label model


def deletion_curve(
    classifier: ExplainableClassifier, explanation: Explanation, *, max_steps: int = 50
) -> DeletionCurve:
    """Run the deletion test of ``explanation`` on ``classifier`` (one batched pass).

    Texts of more than ``max_steps`` words are perturbed in ``max_steps`` even fractions
    instead of one word per step. Ties in the scores keep text order.
    """
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ConfigError(f"max_steps must be a positive integer; got {max_steps!r}.")
    tokenizer = classifier.tokenizer
    fill = tokenizer.mask_token_id
    if fill is None:
        fill = tokenizer.pad_token_id
    if fill is None:
        raise ConfigError("The deletion test needs a mask or pad token; the tokenizer has neither.")
    encoded = encode_words(classifier, explanation.clean_text)
    if encoded.words != explanation.words:
        raise DataError(
            "The explanation's words do not match this classifier's tokenization of its "
            "clean_text; was it computed with another model?"
        )
    scores = np.asarray(explanation.scores, dtype=np.float64)
    steps = _steps(len(scores), max_steps)
    token_words = np.array([-1 if w is None else w for w in encoded.token_words])
    ids = encoded.inputs["input_ids"][0]  # (T,)
    rows = []
    for order in (np.argsort(-scores, kind="stable"), np.argsort(scores, kind="stable")):
        for k in steps:
            row = ids.copy()
            row[np.isin(token_words, order[:k])] = fill
            rows.append(row)
    perturbed = np.stack(rows)  # (2 * steps, T): most-first rows, then least-first rows
    probs = np.empty(len(perturbed))
    for start in range(0, len(perturbed), classifier.batch_size):
        chunk = perturbed[start : start + classifier.batch_size]
        batch = {
            name: np.repeat(values, len(chunk), axis=0) for name, values in encoded.inputs.items()
        }
        batch["input_ids"] = chunk
        logits = classifier.backend(batch)
        probs[start : start + len(chunk)] = classifier.calibration.probabilities(logits)[
            :, explanation.target_index
        ]
    most, least = probs[: len(steps)], probs[len(steps) :]
    aopc = float(np.mean(most[0] - most))
    aopc_least = float(np.mean(least[0] - least))
    return DeletionCurve(
        target=explanation.target,
        method=explanation.method,
        removed=steps.tolist(),
        fractions=(steps / len(scores)).tolist(),
        most_first=most.tolist(),
        least_first=least.tolist(),
        aopc=aopc,
        aopc_least_first=aopc_least,
        area_between=aopc - aopc_least,
        threshold=_threshold(classifier, explanation.target_index),
    )
