"""Fitting a :class:`Calibration` on validation logits, tuned decisions only where data supports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from emorec.calibration._common import DEFAULT_THRESHOLD, _logits_2d
from emorec.calibration.bias import BiasTuner
from emorec.calibration.reliability import expected_calibration_error
from emorec.calibration.rule import Calibration
from emorec.calibration.temperature import TemperatureScaler, _scaled_log_softmax
from emorec.calibration.thresholds import ThresholdTuner, _threshold
from emorec.config.sections import CalibrationConfig
from emorec.errors import DataError
from emorec.metrics import macro_f1
from emorec.task import SINGLE_LABEL, Task, as_task


def _class_names(label_names: Sequence[str] | None, n_classes: int) -> list[str]:
    if label_names is None:
        return [f"class {i}" for i in range(n_classes)]
    if len(label_names) != n_classes:
        raise DataError(
            f"label_names has {len(label_names)} names but the logits have {n_classes} classes."
        )
    return [str(name) for name in label_names]


def _listing(names: list[str], counts: np.ndarray, indices: np.ndarray, limit: int = 8) -> str:
    """``"love (3), surprise (1)"``: the classes at ``indices`` with their counts, fewest first."""
    ordered = sorted(indices.tolist(), key=lambda i: (counts[i], i))
    shown = ", ".join(f"{names[i]} ({int(counts[i])})" for i in ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def validation_folds(targets: np.ndarray, n_folds: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(fit_idx, held_idx)`` for each of ``n_folds`` seeded folds of the validation rows.

    Single-label folds (``targets`` (N,)) are stratified by class, multi-label ones (N, C)
    plain; the same data always gives the same folds.
    """
    index = np.zeros(len(targets))
    if targets.ndim == 2:
        return KFold(n_folds, shuffle=True, random_state=0).split(index)
    return StratifiedKFold(n_folds, shuffle=True, random_state=0).split(index, targets)


def can_fold(targets: np.ndarray, n_folds: int) -> bool:
    """Whether :func:`validation_folds` can split ``targets`` into ``n_folds`` useful folds:
    two rows per fold (multi-label), or two classes each with a row in every fold."""
    if targets.ndim == 2:
        return len(targets) >= 2 * n_folds
    counts = np.bincount(targets)
    return np.count_nonzero(counts) >= 2 and counts[counts > 0].min() >= n_folds


def _cv_gain(targets: np.ndarray, n_labels: int, n_folds: int, decisions: Any) -> float:
    """Mean held-out macro-F1 gain of a tuned rule over the raw one, by k-fold on validation.

    ``decisions(fit_idx, held_idx)`` fits the tuned rule on the ``fit_idx`` rows and returns
    ``(tuned, raw)`` decisions for the ``held_idx`` rows (folds from :func:`validation_folds`).
    """
    gains = []
    for fit_idx, held_idx in validation_folds(targets, n_folds):
        tuned, raw = decisions(fit_idx, held_idx)
        held = targets[held_idx]
        gains.append(macro_f1(held, tuned, n_labels) - macro_f1(held, raw, n_labels))
    return float(np.mean(gains))


def _cv_sentence(n_folds: int, gain: float) -> str:
    return (
        f"{n_folds}-fold cross-validation on the validation split gives a mean held-out "
        f"macro-F1 gain of {gain:+.4f}"
    )


@dataclass
class _Tuned:
    """What the decision tuning of :func:`fit_calibration` settled on, and why."""

    adopted: bool
    reason: str
    biases: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    cv_gain: float | None = None


def _tune_biases(
    scores: np.ndarray, targets: np.ndarray, config: CalibrationConfig, names: list[str]
) -> _Tuned:
    """Per-class offsets on ``scores`` (N, C) log-probabilities, if the data supports them."""
    need = config.min_examples_per_class
    counts = np.bincount(targets, minlength=scores.shape[1])
    short = np.flatnonzero(counts < need)
    if short.size:
        return _Tuned(
            False,
            f"{_listing(names, counts, short)} {'has' if short.size == 1 else 'have'} fewer than "
            f"calibration.min_examples_per_class={need} validation examples, too few to tune "
            "per-class offsets; the decision stays argmax.",
        )

    def tuner() -> BiasTuner:
        return BiasTuner(
            config.bias_grid_min,
            config.bias_grid_max,
            config.bias_grid_steps,
            min_improvement=config.bias_min_improvement,
        )

    fitted = tuner().fit(scores, targets)
    if not fitted.biases_.any():
        margin = config.bias_min_improvement
        return _Tuned(
            False,
            "no per-class offsets raise validation macro-F1"
            + (f" by more than calibration.bias_min_improvement={margin:g}" if margin else "")
            + "; the decision stays argmax.",
        )
    fewest = np.array([int(counts.argmin())])
    reason = (
        f"every class has at least {need} validation examples (fewest: "
        f"{_listing(names, counts, fewest)}); the offsets raise validation macro-F1 from "
        f"{fitted.score_before_:.4f} to {fitted.score_after_:.4f}"
    )
    gain = None
    k = config.cv_folds
    if k:
        if counts.min() < k:
            return _Tuned(
                False,
                f"{k}-fold cross-validation (calibration.cv_folds) needs at least {k} validation "
                f"examples of every class, and {_listing(names, counts, fewest)} has fewer; the "
                "decision stays argmax.",
            )
        gain = _cv_gain(
            targets,
            scores.shape[1],
            k,
            lambda fit, held: (
                tuner().fit(scores[fit], targets[fit]).predict(scores[held]),
                scores[held].argmax(axis=1),
            ),
        )
        if not gain > 0:
            return _Tuned(
                False,
                f"{_cv_sentence(k, gain)}, so the offsets do not generalise; the decision stays "
                "argmax.",
                cv_gain=gain,
            )
        reason += f"; {_cv_sentence(k, gain)}"
    return _Tuned(True, reason + ".", biases=fitted.biases_, cv_gain=gain)


def _tune_thresholds(
    probs: np.ndarray, targets: np.ndarray, config: CalibrationConfig, names: list[str]
) -> _Tuned:
    """Per-label (or one global) thresholds on ``probs`` (N, C), where the data supports them."""

    def tuner() -> ThresholdTuner:
        return ThresholdTuner(
            grid=np.round(np.arange(0.01, config.max_threshold + 0.005, 0.01), 10),
            min_threshold=config.min_threshold,
            min_positives=config.min_positives,
            strategy=config.threshold_strategy,
        )

    fitted = tuner().fit(probs, targets)
    positives = targets.sum(axis=0)
    kept = np.flatnonzero(fitted.fallback_)
    need = config.min_positives
    short = (
        f"{_listing(names, positives, kept)} {'has' if kept.size == 1 else 'have'} fewer than "
        f"calibration.min_positives={need} validation positives"
    )
    if kept.size == len(names):
        return _Tuned(
            False, f"{short}: every label keeps the default threshold {DEFAULT_THRESHOLD:g}."
        )
    tuned = len(names) - kept.size
    kind = "a global threshold" if config.threshold_strategy == "global" else "thresholds"
    reason = f"{kind} tuned for {tuned} of {len(names)} labels"
    if kept.size:
        reason += f"; {short} and keep the default threshold {DEFAULT_THRESHOLD:g}"
    gain = None
    k = config.cv_folds
    if k:
        if len(targets) < k:
            return _Tuned(
                False,
                f"{k}-fold cross-validation (calibration.cv_folds) needs at least {k} validation "
                f"rows; got {len(targets)}. Every label keeps the default threshold "
                f"{DEFAULT_THRESHOLD:g}.",
            )
        ensure_one = config.ensure_one_label
        gain = _cv_gain(
            targets,
            probs.shape[1],
            k,
            lambda fit, held: (
                tuner().fit(probs[fit], targets[fit]).predict(probs[held], ensure_one),
                _threshold(probs[held], DEFAULT_THRESHOLD, ensure_one),
            ),
        )
        if not gain > 0:
            return _Tuned(
                False,
                f"{_cv_sentence(k, gain)}, so tuned thresholds do not generalise; every label "
                f"keeps the default threshold {DEFAULT_THRESHOLD:g}.",
                cv_gain=gain,
            )
        reason += f"; {_cv_sentence(k, gain)}"
    return _Tuned(True, reason + ".", thresholds=fitted.thresholds_, cv_gain=gain)


def fit_calibration(
    logits: Any,
    y: Any,
    config: CalibrationConfig,
    task: Task | bool = SINGLE_LABEL,
    label_names: Sequence[str] | None = None,
    *,
    multi_label: bool | None = None,
) -> Calibration:
    """Fit a :class:`Calibration` on **validation** logits (N, C) and labels.

    Give it the validation split, never the test split: temperature, offsets and thresholds
    are tuned to these labels, so scores on the same data are optimistic. ``y`` is (N,) class
    indices, or (N, C) multi-hot for the multi-label ``task``. Fits T (if
    ``config.temperature``; it changes no argmax nor 0.5-threshold decision), then offsets on
    ``log_softmax(logits / T)`` (``"bias"``) or thresholds on ``sigmoid(logits / T)``
    (``"threshold"``). ``task`` is :data:`~emorec.task.SINGLE_LABEL` or ``MULTI_LABEL`` (the
    label space's ``task``); the former ``multi_label`` flag, as keyword or in its place, is
    still accepted.

    Tuned offsets are adopted only when every class has ``config.min_examples_per_class``
    validation examples, they raise validation macro-F1, and (with ``config.cv_folds``) they
    raise it on held-out folds; otherwise the decision stays argmax. A label with fewer than
    ``config.min_positives`` positives keeps :data:`DEFAULT_THRESHOLD`. ``adopted`` and
    ``reason`` record the outcome, in the words of ``label_names`` when given. Also records
    validation ECE and macro-F1 before (T=1, argmax / default threshold) and after.
    """
    task = as_task(task, multi_label)
    z = _logits_2d(logits)
    targets = task.validate_targets(y, *z.shape)
    decision = config.resolved_decision(task)
    names = _class_names(label_names, z.shape[1])

    temperature = 1.0
    if config.temperature:
        scaler = TemperatureScaler(multi_label=task.multi_label).fit(z, targets)
        temperature = scaler.temperature_

    if decision == "bias":
        tuned = _tune_biases(_scaled_log_softmax(z, temperature), targets, config, names)
        if not tuned.adopted:
            decision = "argmax"
    elif decision == "threshold":
        probs = task.probabilities(z, temperature)
        tuned = _tune_thresholds(probs, targets, config, names)
    else:
        tuned = _Tuned(False, "calibration.decision is 'argmax': only the temperature is fitted.")

    raw = Calibration.untuned(task)
    calibration = Calibration(
        temperature=temperature,
        biases=None if tuned.biases is None else tuned.biases.tolist(),
        thresholds=None if tuned.thresholds is None else tuned.thresholds.tolist(),
        decision=decision,
        multi_label=task.multi_label,
        # Only a threshold rule can leave a row without a label to ensure.
        ensure_one_label=config.ensure_one_label and decision == "threshold",
        adopted=tuned.adopted,
        reason=tuned.reason,
        cv_gain=tuned.cv_gain,
    )
    calibration.ece_before = expected_calibration_error(
        raw.probabilities(z), targets, config.ece_bins
    )
    calibration.ece_after = expected_calibration_error(
        calibration.probabilities(z), targets, config.ece_bins
    )
    calibration.macro_f1_before = macro_f1(targets, raw.decide(z), z.shape[1])
    calibration.macro_f1_after = macro_f1(targets, calibration.decide(z), z.shape[1])
    return calibration
