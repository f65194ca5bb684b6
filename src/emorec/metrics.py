"""The one macro-F1 of emorec, used by every stage that scores decisions.

Early stopping, the tuning objective, the bias and threshold tuners, calibration's
cross-validation, the export gate and the evaluation reports all call :func:`macro_f1` (or
:func:`per_label_f1`), so the number a stage optimises is the number a report shows.

The average runs over **all labels of the label space**, a label with no true and no predicted
example scoring 0: ``sklearn.metrics.f1_score(y_true, y_pred, labels=range(n_labels),
average="macro", zero_division=0)``. sklearn's default for single-label data without
``labels=`` averages over the classes present instead, so a class that reached no validation
row would silently raise the score; here it counts, as it does in a multi-label average.

Computed from confusion counts with numpy only (no input checks of sklearn's), because the
tuners call it thousands of times; a test checks it against sklearn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emorec.errors import DataError


def f1_from_counts(tp: np.ndarray, n_true: np.ndarray, n_pred: np.ndarray) -> np.ndarray:
    """Per-label F1 from counts (..., C): ``2·tp / (n_true + n_pred)``, 0 where both are 0."""
    tp, denom = np.asarray(tp, dtype=np.float64), np.asarray(n_true + n_pred, dtype=np.float64)
    shape = np.broadcast(tp, denom).shape
    return np.divide(2.0 * tp, denom, out=np.zeros(shape), where=denom > 0)


def macro_f1_from_counts(tp: np.ndarray, n_true: np.ndarray, n_pred: np.ndarray) -> np.ndarray:
    """Macro-F1 over the last axis (C labels) of per-label counts; shape (...)."""
    return f1_from_counts(tp, n_true, n_pred).mean(axis=-1)


def _checked(y_true: Any, y_pred: Any, n_labels: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.ndim not in (1, 2):
        raise DataError(
            f"y_true and y_pred must both be (N,) labels or (N, C) indicators; got shapes "
            f"{t.shape} and {p.shape}."
        )
    if t.ndim == 2:
        if n_labels is not None and n_labels != t.shape[1]:
            raise DataError(f"n_labels is {n_labels} but the indicators have {t.shape[1]} columns.")
        return t.astype(bool), p.astype(bool), t.shape[1]
    if n_labels is None:
        raise DataError(
            "single-label macro-F1 needs n_labels, the size of the label space: a label with no "
            "example in the data still counts (as 0) in the average."
        )
    t, p = t.astype(np.int64), p.astype(np.int64)
    largest = int(max(t.max(initial=0), p.max(initial=0)))
    if largest >= n_labels or min(t.min(initial=0), p.min(initial=0)) < 0:
        raise DataError(f"labels must be class indices in [0, {n_labels}); got up to {largest}.")
    return t, p, n_labels


def per_label_f1(y_true: Any, y_pred: Any, n_labels: int | None = None) -> np.ndarray:
    """F1 of each of the ``n_labels`` labels (C,); single-label needs ``n_labels``.

    ``y_true``, ``y_pred``: (N,) class indices, or (N, C) 0/1 indicator matrices (multi-label,
    ``n_labels`` then defaults to C).
    """
    t, p, n = _checked(y_true, y_pred, n_labels)
    if t.ndim == 2:
        return f1_from_counts((t & p).sum(0), t.sum(0), p.sum(0))
    tp = np.bincount(t[t == p], minlength=n)
    return f1_from_counts(tp, np.bincount(t, minlength=n), np.bincount(p, minlength=n))


def macro_f1(y_true: Any, y_pred: Any, n_labels: int | None = None) -> float:
    """Macro-F1 over all ``n_labels`` labels, absent ones scoring 0 (see the module docstring)."""
    return float(per_label_f1(y_true, y_pred, n_labels).mean())
