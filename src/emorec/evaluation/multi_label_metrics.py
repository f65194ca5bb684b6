"""Multi-label metrics: input checks, the flat metrics dict per decision rule, error analysis.

The pure core behind :mod:`emorec.evaluation.multi_label`: arrays in, values out. The metric
names defined here (summary, per label) are also the rows and columns of its report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

from emorec.calibration import expected_calibration_error
from emorec.errors import DataError
from emorec.evaluation.common import check_label_names
from emorec.metrics import macro_f1

Rules = Mapping[str, tuple[np.ndarray, np.ndarray]]
Thresholds = Mapping[str, float | np.ndarray]

# (metric suffix, heading) of the rule-level metrics, in the order report.md shows them.
_SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("micro_f1", "Micro F1"),
    ("macro_f1", "Macro F1"),
    ("weighted_f1", "Weighted F1"),
    ("samples_f1", "Samples F1"),
    ("micro_precision", "Micro precision"),
    ("micro_recall", "Micro recall"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
    ("roc_auc_macro", "ROC-AUC (macro)"),
    ("hamming_loss", "Hamming loss"),
    ("hamming_score", "Hamming score"),
    ("exact_match", "Exact match"),
    ("ece", "ECE"),
    ("predicted_cardinality", "Predicted labels per sample"),
)
_PER_LABEL_METRICS: tuple[str, ...] = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "mcc",
    "support",
    "threshold",
)
# Per-label metrics that get a simple mean (label_mean_*) and a support-weighted mean.
_AVERAGED_METRICS: tuple[str, ...] = tuple(k for k in _PER_LABEL_METRICS if k != "support")
_HEADINGS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1"}
_HEADINGS |= {"mcc": "MCC", "threshold": "Threshold"}
_MAX_ERRORS_PER_KIND = 500


# --------------------------------------------------------------------------- validation


def _as_multi_hot(name: str, values: Any, n: int | None, n_labels: int) -> np.ndarray:
    """Return ``values`` as an (N, C) int64 0/1 matrix, or raise DataError."""
    arr = np.asarray(values)
    if arr.ndim != 2:
        raise DataError(
            f"{name} must be a multi-hot matrix of shape (N, C) = (N, {n_labels}); got shape "
            f"{arr.shape}. Single-label ids of shape (N,) go to emorec.evaluate.compute_metrics."
        )
    expected = (arr.shape[0] if n is None else n, n_labels)
    if arr.shape != expected:
        raise DataError(
            f"{name} has shape {arr.shape}; expected (N, C) = {expected} to match "
            "y_true and label_names."
        )
    if arr.dtype != bool:
        numeric = np.issubdtype(arr.dtype, np.number)
        bad = arr[(arr != 0) & (arr != 1)] if numeric else arr.ravel()
        if bad.size:
            raise DataError(
                f"{name} must hold only 0 and 1 (multi-hot); got dtype {arr.dtype} with value "
                f"{bad[0].item()!r}. Binarise labels with the model's label space, and predictions "
                "with thresholds, first."
            )
    return arr.astype(np.int64)


def _as_sigmoid_probs(rule: str, probs: Any, shape: tuple[int, int]) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != shape:
        raise DataError(
            f"probs for rule {rule!r} have shape {p.shape}; expected (N, C) = {shape} to "
            "match y_true and label_names."
        )
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise DataError(
            f"probs for rule {rule!r} must be finite probabilities in [0, 1]; got values in "
            f"[{np.nanmin(p):.4g}, {np.nanmax(p):.4g}]. Did you pass logits? Apply a sigmoid "
            "first."
        )
    return p


def _as_thresholds(rule: str, thresholds: Any, n_labels: int) -> np.ndarray:
    """A scalar or (C,) threshold(s) as a (C,) float array in [0, 1]."""
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim == 0:
        thr = np.full(n_labels, float(thr))
    if thr.shape != (n_labels,):
        raise DataError(
            f"thresholds for rule {rule!r} have shape {thr.shape}; expected one per label, "
            f"shape ({n_labels},), or a single float."
        )
    if not np.all(np.isfinite(thr)) or thr.min() < 0 or thr.max() > 1:
        raise DataError(
            f"thresholds for rule {rule!r} must lie in [0, 1]; got values in "
            f"[{np.nanmin(thr):.4g}, {np.nanmax(thr):.4g}]."
        )
    return thr


def _validate(
    y_true: Any, label_names: Sequence[str], rules: Rules, thresholds: Thresholds
) -> tuple[np.ndarray, list[str], dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    names = check_label_names(label_names)
    y = _as_multi_hot("y_true", y_true, None, len(names))
    if y.shape[0] == 0:
        raise DataError("y_true is empty; there are no samples to evaluate.")
    if not rules:
        raise ValueError("rules is empty; pass at least one rule, e.g. {'fixed': (probs, y_pred)}.")
    if set(thresholds) != set(rules):
        raise ValueError(
            f"thresholds must have one entry per rule; rules are {list(rules)}, thresholds "
            f"are given for {list(thresholds)}. Pass DEFAULT_THRESHOLD for an untuned rule."
        )
    checked: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for rule, (probs, y_pred) in rules.items():
        if not rule or "/" in rule:
            raise ValueError(f"rule names must be non-empty and free of '/'; got {rule!r}.")
        checked[rule] = (
            _as_sigmoid_probs(rule, probs, y.shape),
            _as_multi_hot(f"y_pred for rule {rule!r}", y_pred, y.shape[0], len(names)),
            _as_thresholds(rule, thresholds[rule], len(names)),
        )
    return y, names, checked


# --------------------------------------------------------------------------- pure core


def _mcc(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    """Per-label Matthews correlation; 0 where undefined (sklearn's convention)."""
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return np.divide(tp * tn - fp * fn, denom, out=np.zeros(tp.shape), where=denom > 0)


def _rule_metrics(
    rule: str,
    y: np.ndarray,
    probs: np.ndarray,
    pred: np.ndarray,
    thresholds: np.ndarray,
    names: list[str],
    ece_bins: int,
) -> dict[str, float]:
    n = y.shape[0]
    # Confusion counts per label, float64 so the MCC products cannot overflow: (C,) each.
    tp = (y & pred).sum(0).astype(np.float64)
    fp = ((1 - y) & pred).sum(0).astype(np.float64)
    fn = (y & (1 - pred)).sum(0).astype(np.float64)
    tn = n - tp - fp - fn
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, average=None, zero_division=0)
    per_label = {
        "accuracy": (tp + tn) / n,
        "precision": prec,
        "recall": rec,
        "f1": f1,
        "mcc": _mcc(tp, fp, fn, tn),
        "support": support.astype(np.float64),
        "threshold": thresholds,
    }
    micro_p, micro_r, micro_f1, _ = precision_recall_fscore_support(
        y, pred, average="micro", zero_division=0
    )
    # ROC-AUC is undefined for a label that is always (or never) on in y_true.
    scored = np.flatnonzero((support > 0) & (support < n))
    aucs = [roc_auc_score(y[:, c], probs[:, c]) for c in scored]
    # Hamming score: a sample with no true and no predicted label is perfectly right.
    inter, union = (y & pred).sum(1), (y | pred).sum(1)
    jaccard = np.divide(inter, union, out=np.ones(n), where=union > 0)
    total_support = support.sum()

    out = {
        f"{rule}/micro_f1": float(micro_f1),
        f"{rule}/macro_f1": macro_f1(y, pred),
        f"{rule}/weighted_f1": float(f1_score(y, pred, average="weighted", zero_division=0)),
        f"{rule}/samples_f1": float(f1_score(y, pred, average="samples", zero_division=0)),
        f"{rule}/micro_precision": float(micro_p),
        f"{rule}/micro_recall": float(micro_r),
        f"{rule}/macro_precision": float(prec.mean()),
        f"{rule}/macro_recall": float(rec.mean()),
        f"{rule}/roc_auc_macro": float(np.mean(aucs)) if aucs else math.nan,
        f"{rule}/roc_auc_labels": float(len(aucs)),
        f"{rule}/hamming_loss": float(np.mean(y != pred)),
        f"{rule}/hamming_score": float(jaccard.mean()),
        f"{rule}/exact_match": float(np.mean((y == pred).all(axis=1))),
        f"{rule}/ece": expected_calibration_error(probs, y, ece_bins),
        f"{rule}/predicted_cardinality": float(pred.sum(1).mean()),
    }
    for k in _AVERAGED_METRICS:
        values = per_label[k]
        out[f"{rule}/label_mean_{k}"] = float(values.mean())
        # With no positives at all there is nothing to weight by; 0 like sklearn's "weighted".
        weighted = values @ support / total_support if total_support > 0 else 0.0
        out[f"{rule}/label_weighted_{k}"] = float(weighted)
    for c, label in enumerate(names):
        for k in _PER_LABEL_METRICS:
            out[f"{rule}/{label}/{k}"] = float(per_label[k][c])
    return out


def compute_multilabel_metrics(
    y_true: np.ndarray,
    label_names: Sequence[str],
    rules: Mapping[str, tuple[np.ndarray, np.ndarray]],
    thresholds: Mapping[str, float | np.ndarray],
    ece_bins: int = 15,
) -> dict[str, float]:
    """Score every decision rule against multi-hot ``y_true``; return one flat dict.

    Args:
        y_true: ``(N, C)`` 0/1 targets.
        label_names: the ``C`` label names, in column order.
        rules: ``{rule: (probs (N, C), y_pred (N, C) 0/1)}``. ``y_pred`` need not equal
            ``probs >= thresholds`` (e.g. when empty rows get their top label); ROC-AUC and
            ECE come from ``probs``, everything else from ``y_pred``.
        thresholds: ``{rule: (C,) thresholds or one float}``, one entry per rule, recorded
            as ``{rule}/{label}/threshold``.
        ece_bins: equal-width bins for the ECE over all ``N * C`` (example, label) forecasts.

    Keys per rule: ``micro_f1, macro_f1, weighted_f1, samples_f1, micro_precision,
    micro_recall, macro_precision, macro_recall, roc_auc_macro, roc_auc_labels,
    hamming_loss, hamming_score, exact_match, ece, predicted_cardinality``,
    ``label_mean_{k}`` and ``label_weighted_{k}`` (support-weighted) for ``k`` in
    ``accuracy, precision, recall, f1, mcc, threshold``, and per label
    ``{label}/accuracy|precision|recall|f1|mcc|support|threshold``.

    Macro averages run over all ``C`` labels with scikit-learn's ``zero_division=0``, so
    ``label_mean_f1 == macro_f1``; ``samples_f1`` scores a sample with no true and no
    predicted label 0 (scikit-learn), ``hamming_score`` (mean per-sample Jaccard) scores it 1.
    ``roc_auc_macro`` averages over the ``roc_auc_labels`` labels whose ``y_true`` column has
    both classes, and is NaN when there is none.
    """
    y, names, checked = _validate(y_true, label_names, rules, thresholds)
    metrics: dict[str, float] = {}
    for rule, (probs, pred, thr) in checked.items():
        metrics.update(_rule_metrics(rule, y, probs, pred, thr, names, ece_bins))
    return metrics


def _joined_labels(matrix: np.ndarray, names: list[str]) -> list[str]:
    return ["|".join(names[j] for j in np.flatnonzero(row)) for row in matrix]


def multilabel_error_analysis(
    texts: Sequence[str],
    clean_texts: Sequence[str],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probs: np.ndarray,
    thresholds: float | np.ndarray,
    label_names: Sequence[str],
    max_rows_per_kind: int = _MAX_ERRORS_PER_KIND,
) -> pd.DataFrame:
    """The worst false positives and false negatives, one row per (sample, label) mistake.

    False positives (label predicted, not true) come first, highest probability first; then
    false negatives (label true, missed), lowest probability first; at most
    ``max_rows_per_kind`` of each. Columns: ``kind`` (``false_positive`` |
    ``false_negative``), ``label, probability, threshold, text, clean_text, true_labels,
    predicted_labels`` (``|``-joined names). The index (``row``) is the sample's position.
    """
    names = check_label_names(label_names)
    y = _as_multi_hot("y_true", y_true, None, len(names))
    n = y.shape[0]
    pred = _as_multi_hot("y_pred", y_pred, n, len(names))
    p = _as_sigmoid_probs("error_analysis", probs, y.shape)
    thr = _as_thresholds("error_analysis", thresholds, len(names))
    if len(texts) != n or len(clean_texts) != n:
        raise DataError(
            f"texts ({len(texts)}), clean_texts ({len(clean_texts)}) and y_true ({n}) "
            "must have the same length."
        )
    true_labels, predicted_labels = _joined_labels(y, names), _joined_labels(pred, names)
    frames = []
    for kind, mask, descending in (
        ("false_positive", (pred == 1) & (y == 0), True),
        ("false_negative", (y == 1) & (pred == 0), False),
    ):
        rows, cols = np.nonzero(mask)  # row-major, so ties keep input order below
        prob = p[rows, cols]
        order = np.argsort(-prob if descending else prob, kind="stable")[:max_rows_per_kind]
        rows, cols = rows[order], cols[order]
        frames.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "label": [names[c] for c in cols],
                    "probability": prob[order],
                    "threshold": thr[cols],
                    "text": [texts[i] for i in rows],
                    "clean_text": [clean_texts[i] for i in rows],
                    "true_labels": [true_labels[i] for i in rows],
                    "predicted_labels": [predicted_labels[i] for i in rows],
                },
                index=pd.Index(rows, name="row"),
            )
        )
    return pd.concat(frames)
