"""The accuracy gate: the exported model against PyTorch on labelled texts, calibrated rule."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emorec.artifacts import CONFIG_FILE
from emorec.calibration import CalibrationConfig, can_fold, fit_calibration, validation_folds
from emorec.errors import (
    ConfigError,
    DataError,
)
from emorec.inference import (
    EmotionClassifier,
)
from emorec.metrics import macro_f1
from emorec.task import Task

if TYPE_CHECKING:
    from emorec.config import Config

DEFAULT_MAX_DROP = 0.5  # points of accuracy or macro-F1
# fp32 ONNX must reproduce PyTorch: fused kernels differ by ~1e-6, a wrong graph by far more.
FP32_PROB_TOLERANCE = 1e-3
# Folds of the cross-fitted gate (at least; calibration.cv_folds when that is more).
GATE_FOLDS = 5


# ---- the accuracy gate ---------------------------------------------------------------------
def gate_data(
    classifier: EmotionClassifier,
    model_dir: Path,
    data: str | Path | None,
    config: Config | None = None,
) -> tuple[list[str], np.ndarray, str]:
    """Labelled texts for the gate: ``(texts, targets, description)``.

    ``data``: a labelled file (dair ``text;label``, CSV, TSV, JSONL, Parquet). Otherwise the
    validation split, rebuilt (cached, deterministic) from ``config``, the model's
    ``config.yaml``.
    """
    if data is not None:
        from emorec.data import read_file

        frame = read_file(Path(data), "auto")
        targets = classifier.label_space.encode(frame["label"].tolist())
        return frame["text"].tolist(), np.asarray(targets), str(data)
    if config is None:
        raise ConfigError(
            f"{model_dir} has no config.yaml, so its validation split cannot be rebuilt for the "
            "accuracy gate; pass a labelled file with --data FILE."
        )
    from emorec.data import prepare

    try:
        prepared = prepare(config, classifier.tokenizer)
    except (DataError, ConfigError, OSError) as error:
        raise DataError(
            f"The accuracy gate could not rebuild the validation split from "
            f"{model_dir / CONFIG_FILE}: {error} Pass a labelled file with --data FILE."
        ) from None
    validation = prepared.splits["validation"]
    return list(validation["text"]), np.asarray(validation["labels"]), "validation split"


def gate_scores(decided: np.ndarray, targets: np.ndarray, n_labels: int) -> dict[str, float]:
    """Accuracy (exact match for multi-label) and macro-F1 (over ``n_labels``) of decisions."""
    if targets.ndim == 2:
        targets = targets.astype(np.int64)
        hits = (decided == targets).all(axis=1)
    else:
        hits = decided == targets
    return {"accuracy": float(hits.mean()), "macro_f1": macro_f1(targets, decided, n_labels)}


def _delta_points(reference: dict[str, float], candidate: dict[str, float]) -> dict[str, float]:
    """Candidate − reference, per score, in points (× 100)."""
    return {name: 100.0 * (candidate[name] - reference[name]) for name in reference}


def _cross_fitted_decisions(
    reference_logits: np.ndarray,
    candidate_logits: np.ndarray,
    targets: np.ndarray,
    refit: CalibrationConfig,
    task: Task,
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Both models' decisions on each fold, by a rule re-fitted on the other folds.

    The stored offsets or thresholds were tuned on these very rows with the reference's logits,
    so in sample they sit just on the right side of the rows nearest a boundary: any change of
    the logits, however small and unbiased, then flips more rows to wrong than to right, and
    the reference wins by construction (seen on dair-emotion: 11 int8 flips to wrong, 1 to
    right on validation, net +1 on test). Held-out decisions remove that head start: each row
    is decided by the calibration procedure run on the other folds' reference logits, the rule
    the candidate would inherit. ``None`` when a class has too few rows for the folds.
    """
    n_folds = max(refit.cv_folds, GATE_FOLDS)
    if not can_fold(targets, n_folds):
        return None
    reference = np.empty(targets.shape, dtype=np.int64)
    candidate = np.empty(targets.shape, dtype=np.int64)
    for fit_idx, held_idx in validation_folds(targets, n_folds):
        rule = fit_calibration(reference_logits[fit_idx], targets[fit_idx], refit, task)
        reference[held_idx] = rule.decide(reference_logits[held_idx])
        candidate[held_idx] = rule.decide(candidate_logits[held_idx])
    return reference, candidate, n_folds


def accuracy_gate(
    reference: EmotionClassifier,
    candidate: EmotionClassifier,
    texts: Sequence[str],
    targets: np.ndarray,
    max_drop: float,
    check_parity: bool,
    refit: CalibrationConfig | None = None,
) -> dict[str, Any]:
    """Score both classifiers with the calibrated rule; ``passed`` unless one drops too much.

    Deltas are in points (candidate − reference, × 100). ``check_parity`` also requires the
    probabilities to match within :data:`FP32_PROB_TOLERANCE`. ``refit``: the calibration
    settings, given when ``texts`` are the rows the stored rule was fitted on (the validation
    split); tuned offsets or thresholds are then judged cross-fitted (see
    :func:`_cross_fitted_decisions`), and the in-sample deltas are reported beside them.
    """
    if len(texts) == 0:
        raise DataError("The accuracy gate needs at least one labelled text; the data is empty.")
    rule = reference.calibration
    ref_logits, cand_logits = reference.logits(texts), candidate.logits(texts)
    n_labels = ref_logits.shape[1]
    ref_decided, cand_decided = rule.decide(ref_logits), rule.decide(cand_logits)
    ref_scores = gate_scores(ref_decided, targets, n_labels)
    cand_scores = gate_scores(cand_decided, targets, n_labels)
    delta = _delta_points(ref_scores, cand_scores)
    judged = {"decision_rule": "the stored calibration", "delta_points": delta}
    if refit is not None and rule.tuned and rule.adopted is not False:
        folds = _cross_fitted_decisions(ref_logits, cand_logits, targets, refit, rule.task)
        if folds is None:
            judged["decision_rule"] = (
                "the stored calibration, in sample (too few rows per class to cross-fit it)"
            )
        else:
            ref_held, cand_held, n_folds = folds
            ref_scores = gate_scores(ref_held, targets, n_labels)
            cand_scores = gate_scores(cand_held, targets, n_labels)
            judged = {
                "decision_rule": f"the calibration re-fitted on {n_folds - 1} of {n_folds} folds "
                "of these rows, applied to the held-out fold",
                "delta_points": _delta_points(ref_scores, cand_scores),
                "in_sample_delta_points": delta,
            }
    delta = judged["delta_points"]
    prob_diff = float(
        np.abs(rule.probabilities(cand_logits) - rule.probabilities(ref_logits)).max()
    )
    same = ref_decided == cand_decided  # the shipped rule's decisions, row for row
    failures = [
        f"{name} {100 * ref_scores[name]:.2f} → {100 * cand_scores[name]:.2f} "
        f"({delta[name]:+.2f} points)"
        for name in ("accuracy", "macro_f1")
        if -delta[name] > max_drop
    ]
    if check_parity and prob_diff > FP32_PROB_TOLERANCE:
        failures.append(
            f"probabilities differ from PyTorch by up to {prob_diff:.2g} "
            f"(tolerance {FP32_PROB_TOLERANCE:g})"
        )
    return {
        "n": len(texts),
        "max_drop_points": max_drop,
        "torch": ref_scores,
        "onnx": cand_scores,
        **judged,
        "agreement": float(same.all(axis=1).mean() if same.ndim == 2 else same.mean()),
        "max_abs_prob_diff": prob_diff,
        "passed": not failures,
        "failures": failures,
    }
