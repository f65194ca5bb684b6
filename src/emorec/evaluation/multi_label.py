"""Multi-label evaluation: one flat metrics dict, rendered to JSON, Markdown, CSV and PNG.

The multi-label counterpart of :mod:`emorec.evaluate`, sharing its renderers. The pure core
(:func:`compute_multilabel_metrics`, :func:`multilabel_error_analysis`) takes arrays and returns
values; :func:`write_multilabel_report` is the only function that touches files, and every
number in ``report.md`` and ``per_label.csv`` is formatted from the ``metrics.json`` payload.

A *decision rule* turns sigmoid probabilities into 0/1 predictions, e.g. ``"fixed"`` (raw
probabilities, :data:`~emorec.calibration.DEFAULT_THRESHOLD` for every label) or
``"calibrated"`` (temperature-scaled probabilities, tuned per-label thresholds). Each rule
contributes ``probs (N, C)``, ``y_pred (N, C)`` and its thresholds ``(C,)``; metric keys are
``"{rule}/{metric}"`` and ``"{rule}/{label}/{metric}"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support, roc_auc_score

from emorec._io import atomic_path, atomic_write_json, atomic_write_text
from emorec.calibration import DEFAULT_THRESHOLD, expected_calibration_error
from emorec.errors import DataError
from emorec.evaluation.common import (
    PRIMARY_METRIC_SUFFIX,
    RESERVED_KEYS,
    TRAINING_CURVES_FILE,
    agg_figure,
    check_decision_rule,
    check_extra,
    check_label_names,
    check_metrics_keys,
    fmt,
    heatmap,
    heatmap_geometry,
    md_cell,
    md_table,
    plot_reliability,
    plot_training_curves,
    save_figure,
    write_config_yaml,
)
from emorec.metrics import macro_f1

__all__ = [
    "compute_multilabel_metrics",
    "multilabel_error_analysis",
    "write_multilabel_report",
]

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
# Row names of the two average rows in per_label.csv and report.md.
_MEAN_ROWS = (("mean", "label_mean"), ("weighted mean", "label_weighted"))
_ML_RESERVED_KEYS = RESERVED_KEYS | {
    "multi_label",
    "label_cardinality",
    "label_cooccurrence",
    "label_confusion",
}
# Thresholds at which threshold_curves.png evaluates each label's F1.
_CURVE_GRID = np.round(np.linspace(0.05, 0.95, 91), 2)
_MAX_ERRORS_PER_KIND = 500
_N_RANKED_LABELS = 3


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


def _threshold_f1_curves(y: np.ndarray, probs: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """F1 of each label when thresholded at each grid value: (G, C)."""
    pred = probs[None, :, :] >= grid[:, None, None]  # (G, N, C)
    tp = (pred & (y[None] == 1)).sum(1)
    denom = y.sum(0)[None, :] + pred.sum(1)
    return np.divide(2.0 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)


# --------------------------------------------------------------------------- renderers


def _fmt_threshold(value: float) -> str:
    # Tuned thresholds live on a 0.01 grid, so two decimals lose nothing there.
    return f"{value:.2f}"


def _fmt_metric(metric: str, value: float) -> str:
    return _fmt_threshold(value) if metric == "threshold" else fmt(value)


def _ranked_labels(m: Mapping[str, float], rule: str, names: list[str]) -> list[str]:
    """Labels with support, by ascending F1 (absent labels have F1 forced to 0)."""
    present = [c for c in names if m[f"{rule}/{c}/support"] > 0]
    return sorted(present, key=lambda c: m[f"{rule}/{c}/f1"])


def _per_label_rows(
    m: Mapping[str, float], rules: list[str], names: list[str]
) -> list[tuple[str, dict[str, float]]]:
    """``(row name, {column: value})`` for each label and the two average rows.

    Columns are ``support`` and ``{rule}_{metric}``; the average rows' support is the total
    (as in scikit-learn's ``classification_report``).
    """
    rows = [
        (c, {f"{r}_{k}": m[f"{r}/{c}/{k}"] for r in rules for k in _PER_LABEL_METRICS})
        for c in names
    ]
    total = sum(m[f"{rules[0]}/{c}/support"] for c in names)
    for row_name, prefix in _MEAN_ROWS:
        cells = {
            f"{r}_{k}": total if k == "support" else m[f"{r}/{prefix}_{k}"]
            for r in rules
            for k in _PER_LABEL_METRICS
        }
        rows.append((row_name, cells))
    return rows


def _per_label_frame(payload: Mapping[str, Any], rules: list[str]) -> pd.DataFrame:
    rows = _per_label_rows(payload["metrics"], rules, payload["label_names"])
    frame = pd.DataFrame(
        [cells for _, cells in rows], index=pd.Index([name for name, _ in rows], name="label")
    )
    for r in rules:
        frame[f"{r}_support"] = frame[f"{r}_support"].astype(np.int64)
    return frame


def _render_report_md(
    payload: Mapping[str, Any], rules: list[str], files: Mapping[str, str]
) -> str:
    """Markdown summary and side-by-side per-label table, every number from ``payload``."""
    m: dict[str, float] = payload["metrics"]
    names: list[str] = payload["label_names"]
    rule = payload["decision_rule"]
    n_auc = int(m[f"{rule}/roc_auc_labels"])
    lines = [
        f"# Evaluation report: {payload['run_name']}",
        "",
        "## Summary",
        "",
        f"- **Samples:** {payload['n_samples']}",
        f"- **Labels:** {len(names)} (multi-label)",
        f"- **Label cardinality:** {fmt(payload['label_cardinality'])} true labels per sample",
        f"- **Default decision rule:** `{rule}` (primary metric `{payload['primary_metric']}` "
        f"= {fmt(m[payload['primary_metric']])})",
        f"- **ROC-AUC:** macro average over {n_auc} of {len(names)} labels "
        f"({len(names) - n_auc} with a single class in the data excluded)",
    ]
    ranked = _ranked_labels(m, rule, names)
    k = max(1, min(_N_RANKED_LABELS, len(ranked) // 2))
    for title, chosen in (("Best", ranked[::-1][:k]), ("Worst", ranked[:k])):
        shown = ", ".join(f"{c} ({fmt(m[f'{rule}/{c}/f1'])})" for c in chosen) or "n/a"
        lines.append(f"- **{title} labels by F1 (`{rule}`):** {shown}")
    lines.append("")
    lines += md_table(
        ["Metric", *(f"`{r}`" for r in rules)],
        (
            [heading, *(fmt(m[f"{r}/{suffix}"]) for r in rules)]
            for suffix, heading in _SUMMARY_METRICS
        ),
    )
    lines += [
        "",
        "Hamming score is the mean per-sample |true ∩ predicted| / |true ∪ predicted| (a sample "
        "with neither scores 1); samples F1 scores such a sample 0, as scikit-learn does. "
        "Macro averages run over all labels; ECE treats every (example, label) probability as "
        "one forecast.",
        "",
        "## Per-label report",
        "",
    ]
    metrics = [k for k in _PER_LABEL_METRICS if k != "support"]
    header = ["Label", "Support"]
    header += [f"{_HEADINGS[k]} (`{r}`)" for k in metrics for r in rules]
    body = []
    for name, cells in _per_label_rows(m, rules, names):
        label = md_cell(name) if name in names else f"**{name}**"
        values = [_fmt_metric(k, cells[f"{r}_{k}"]) for k in metrics for r in rules]
        body.append([label, str(int(cells[f"{rules[0]}_support"])), *values])
    lines += md_table(header, body)
    lines += ["", "## Artifacts", ""]
    lines += [f"- [{name}]({name})" for name in files.values() if name != "report.md"]
    for key, alt in (
        ("threshold_curves", "F1 against threshold per label"),
        ("precision_recall", "Per-label precision, recall and F1"),
        ("cooccurrence", "Label co-occurrence and multi-label confusion"),
        ("reliability_diagram", "Reliability diagram"),
        ("training_curves", "Training curves"),
    ):
        if key in files:
            lines += ["", f"![{alt}]({files[key]})"]
    lines.append("")
    return "\n".join(lines)


def _small_multiples(n: int, panel: tuple[float, float], ncols: int = 7) -> tuple[Any, Any]:
    ncols = min(n, ncols)
    nrows = math.ceil(n / ncols)
    fig, axes = agg_figure(
        (panel[0] * ncols + 0.5, panel[1] * nrows + 1.0),
        ncols=ncols,
        nrows=nrows,
        sharex=True,
        sharey=True,
    )
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_axis_off()
    # sharex hides tick labels above another row; keep them where the panel below is empty.
    for ax in flat[max(0, n - ncols) : n]:
        ax.tick_params(labelbottom=True)
    return fig, flat[:n]


def _plot_threshold_curves(
    path: Path,
    y: np.ndarray,
    probs: np.ndarray,
    thresholds: np.ndarray,
    payload: Mapping[str, Any],
) -> None:
    names: list[str] = payload["label_names"]
    rule = payload["decision_rule"]
    m = payload["metrics"]
    curves = _threshold_f1_curves(y, probs, _CURVE_GRID)
    fig, axes = _small_multiples(len(names), (2.4, 1.9))
    for c, (ax, label) in enumerate(zip(axes, names, strict=True)):
        ax.plot(_CURVE_GRID, curves[:, c], color="C0", label="F1 on this split")
        ax.axvline(thresholds[c], color="C3", label=f"{rule} threshold")
        ax.axvline(DEFAULT_THRESHOLD, color="grey", linestyle="--", label="default threshold")
        ax.set_title(f"{label} (n={int(m[f'{rule}/{label}/support'])})", fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1.02))
        ax.tick_params(labelsize=7)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper")
    fig.supxlabel("Threshold")
    fig.supylabel("F1")
    fig.suptitle(f"{payload['run_name']}: F1 against threshold ({rule} probabilities)")
    save_figure(fig, path)


def _plot_precision_recall(path: Path, payload: Mapping[str, Any]) -> None:
    m = payload["metrics"]
    rule = payload["decision_rule"]
    # Best label on top: barh draws the first bar at the bottom.
    names = sorted(payload["label_names"], key=lambda c: m[f"{rule}/{c}/f1"])
    pos = np.arange(len(names))
    height = 0.27
    fig, axes = agg_figure((8.0, max(3.0, 0.4 * len(names) + 1.5)))
    ax = axes[0, 0]
    for i, k in enumerate(("precision", "recall", "f1")):
        values = [m[f"{rule}/{c}/{k}"] for c in names]
        ax.barh(pos + (1 - i) * height, values, height=height, label=_HEADINGS[k])
    ax.set_yticks(pos, [f"{c} (n={int(m[f'{rule}/{c}/support'])})" for c in names])
    ax.set(xlim=(0, 1), xlabel="Score", title=f"{payload['run_name']}: per-label scores ({rule})")
    ax.legend(loc="lower right")
    save_figure(fig, path)


def _plot_cooccurrence(path: Path, payload: Mapping[str, Any]) -> None:
    names: list[str] = payload["label_names"]
    rule = payload["decision_rule"]
    cooc = np.asarray(payload["label_cooccurrence"], dtype=np.float64)
    confusion = np.asarray(payload["label_confusion"][rule], dtype=np.float64)
    # Divide row i by label i's support (the co-occurrence diagonal): P(column | row true).
    support = np.diag(cooc)[:, None]
    side, _ = heatmap_geometry(len(names))
    fig, axes = agg_figure((2 * side + 1, side), ncols=2)
    panels = (
        (cooc, "True-label co-occurrence: P(column true | row true)", "True label"),
        (confusion, f"True → predicted ({rule}): P(column predicted | row true)", "Predicted"),
    )
    for ax, (counts, title, xlabel) in zip(axes[0], panels, strict=True):
        normed = np.divide(counts, support, out=np.zeros(counts.shape), where=support > 0)
        heatmap(
            fig,
            ax,
            normed,
            names,
            title=title,
            fmt=".2f",
            vmax=1.0,
            xlabel=xlabel,
            ylabel="True label",
        )
    fig.suptitle(f"{payload['run_name']}: label co-occurrence and multi-label confusion")
    save_figure(fig, path)


# --------------------------------------------------------------------------- writer


def write_multilabel_report(
    output_dir: Path,
    *,
    metrics: dict[str, float],
    label_names: Sequence[str],
    y_true: np.ndarray,
    rules: Mapping[str, tuple[np.ndarray, np.ndarray]],
    thresholds: Mapping[str, float | np.ndarray],
    texts: Sequence[str],
    clean_texts: Sequence[str],
    decision_rule: str,
    run_name: str,
    config_dict: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    ece_bins: int = 15,
    log_history: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write the multi-label evaluation artifacts to ``output_dir`` atomically.

    ``metrics`` is what :func:`compute_multilabel_metrics` returned for the same ``y_true``,
    ``rules``, ``thresholds`` and ``ece_bins``. Returns ``{key: path}`` for ``metrics.json``
    (source of truth, written last), ``report.md``, ``per_label.csv`` (every rule side by
    side), ``error_analysis.csv``, ``threshold_curves.png``,
    ``per_label_precision_recall.png``, ``label_cooccurrence.png`` (all for
    ``decision_rule``), ``reliability_diagram.png`` (every rule), when ``config_dict``
    is given ``config.yaml``, and when the training's ``log_history`` is given
    ``training_curves.png``.
    """
    y, names, checked = _validate(y_true, label_names, rules, thresholds)
    check_decision_rule(decision_rule, checked)
    needed = [f"{r}/{s}" for r in checked for s, _ in _SUMMARY_METRICS]
    needed += [f"{r}/roc_auc_labels" for r in checked]
    needed += [
        f"{r}/{p}_{k}"
        for r in checked
        for p in ("label_mean", "label_weighted")
        for k in _AVERAGED_METRICS
    ]
    needed += [f"{r}/{c}/{k}" for r in checked for c in names for k in _PER_LABEL_METRICS]
    check_metrics_keys(metrics, needed, "compute_multilabel_metrics")
    for r, (_, _, thr) in checked.items():
        if not np.allclose(thr, [metrics[f"{r}/{c}/threshold"] for c in names]):
            raise ValueError(
                f"thresholds for rule {r!r} differ from the ones in metrics; compute the metrics "
                "and write the report with the same thresholds."
            )
    check_extra(extra, _ML_RESERVED_KEYS)

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "run_name": run_name,
        "decision_rule": decision_rule,
        "primary_metric": f"{decision_rule}/{PRIMARY_METRIC_SUFFIX}",
        "n_samples": int(y.shape[0]),
        "label_names": names,
        "multi_label": True,
        "label_cardinality": float(y.sum(1).mean()),
        "metrics": {k: float(v) for k, v in metrics.items()},
        # [i][j]: samples where labels i and j are both true; the diagonal is the support.
        "label_cooccurrence": (y.T @ y).tolist(),
        # [i][j]: samples where label i is true and label j predicted; the diagonal is TP.
        "label_confusion": {r: (y.T @ pred).tolist() for r, (_, pred, _) in checked.items()},
        **(extra or {}),
    }
    files = {
        "metrics": "metrics.json",
        "report": "report.md",
        "per_label": "per_label.csv",
        "error_analysis": "error_analysis.csv",
        "threshold_curves": "threshold_curves.png",
        "precision_recall": "per_label_precision_recall.png",
        "cooccurrence": "label_cooccurrence.png",
        "reliability_diagram": "reliability_diagram.png",
    }
    if config_dict is not None:
        files["config"] = "config.yaml"
    if log_history and plot_training_curves(
        log_history, output_dir / TRAINING_CURVES_FILE, run_name
    ):
        files["training_curves"] = TRAINING_CURVES_FILE
    paths = {key: output_dir / name for key, name in files.items()}
    rule_names = list(checked)

    probs, y_pred, thr = checked[decision_rule]
    _plot_threshold_curves(paths["threshold_curves"], y, probs, thr, payload)
    _plot_precision_recall(paths["precision_recall"], payload)
    _plot_cooccurrence(paths["cooccurrence"], payload)
    plot_reliability(
        paths["reliability_diagram"],
        y,
        {r: (p, pred) for r, (p, pred, _) in checked.items()},
        payload["metrics"],
        ece_bins,
        run_name,
        forecast="Predicted probability (one per example and label)",
        outcome="Fraction positive",
        unit="(example, label) pairs",
    )
    with atomic_path(paths["per_label"]) as tmp:
        _per_label_frame(payload, rule_names).to_csv(tmp, index=True)
    errors = multilabel_error_analysis(texts, clean_texts, y, y_pred, probs, thr, names)
    with atomic_path(paths["error_analysis"]) as tmp:
        errors.to_csv(tmp, index=True)
    atomic_write_text(paths["report"], _render_report_md(payload, rule_names, files))
    if config_dict is not None:
        write_config_yaml(paths["config"], config_dict)
    # Written last, so an existing metrics.json means the renderers above all succeeded.
    atomic_write_json(paths["metrics"], payload)
    return paths
