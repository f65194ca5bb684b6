"""Single-label evaluation: one flat metrics dict, rendered to JSON, Markdown, CSV and PNG.

The pure core (:func:`compute_metrics`, :func:`error_analysis`) takes arrays and returns values.
:func:`write_evaluation_report` is the only function that touches files; ``metrics.json`` is the
source of truth and every number in ``report.md`` is formatted from the same payload.

A *decision rule* is a named way to turn a model's output into predictions, e.g. ``"argmax"``
(uncalibrated softmax, highest probability wins) or ``"calibrated"`` (temperature-scaled
probabilities, possibly with tuned thresholds). Each rule contributes ``probs (N, C)`` and
``y_pred (N,)``; metric keys are ``"{rule}/{metric}"`` and ``"{rule}/{label}/{metric}"``.
Multi-label (multi-hot) evaluation lives in :mod:`emorec.evaluation.multi_label`; what both
share is in :mod:`emorec.evaluation.common`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from emorec._io import atomic_path, atomic_write_json, atomic_write_text
from emorec.calibration import expected_calibration_error
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
    report_paths,
    save_figure,
    training_curves,
    write_config_yaml,
)
from emorec.metrics import macro_f1

__all__ = [
    "PRIMARY_METRIC_SUFFIX",
    "TRAINING_CURVES_FILE",
    "compute_metrics",
    "error_analysis",
    "plot_training_curves",
    "training_curves",
    "write_evaluation_report",
]


# (metric suffix, heading) of the rule-level metrics, in the order report.md shows them.
_SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro F1"),
    ("weighted_f1", "Weighted F1"),
    ("macro_precision", "Macro precision"),
    ("macro_recall", "Macro recall"),
    ("ece", "ECE"),
    ("nll", "NLL"),
)
_PER_CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "support")
# Probabilities of exactly 0 would make the NLL infinite (and unwritable as strict JSON).
_NLL_EPS = 1e-12
# Slack for float32 softmax rows that do not sum to exactly 1.
_ROW_SUM_ATOL = 1e-3

Rules = Mapping[str, tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- validation


def _as_label_ids(name: str, values: Any, label_names: list[str], n: int | None) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array of ids in ``[0, C)``, or raise DataError."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(
            f"{name} must be a 1-D array of label ids with shape (N,); got shape {arr.shape}. "
            "Multi-label (multi-hot) targets are not supported by single-label evaluation."
        )
    if n is not None and arr.shape[0] != n:
        raise DataError(f"{name} has shape {arr.shape} but y_true has shape ({n},).")
    if not np.issubdtype(arr.dtype, np.integer):
        # Integral floats (ids read back through pandas) are fine; 0.5, NaN or "joy" are not.
        floating = np.issubdtype(arr.dtype, np.floating)
        bad = arr[arr != np.round(arr)] if floating else arr
        if bad.size:
            raise DataError(
                f"{name} must hold integer label ids; got dtype {arr.dtype} with value "
                f"{bad[0]!r}. Encode labels with the model's label space first."
            )
    ids = arr.astype(np.int64)
    out_of_range = np.unique(ids[(ids < 0) | (ids >= len(label_names))])
    if out_of_range.size:
        shown = ", ".join(str(v) for v in out_of_range[:5])
        valid = ", ".join(f"{i}={lab!r}" for i, lab in enumerate(label_names))
        raise DataError(
            f"{name} holds label id(s) {shown} outside [0, {len(label_names)}); valid ids are "
            f"{valid}. Encode the data with the same label space as the model."
        )
    return ids


def _as_probs(rule: str, probs: Any, n: int, n_classes: int) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (n, n_classes):
        raise DataError(
            f"probs for rule {rule!r} have shape {p.shape}; expected (N, C) = ({n}, {n_classes}) "
            "to match y_true and label_names."
        )
    row_sums = p.sum(axis=1)
    if (
        not np.all(np.isfinite(p))
        or p.min() < 0
        or p.max() > 1
        or not np.allclose(row_sums, 1.0, atol=_ROW_SUM_ATOL)
    ):
        raise DataError(
            f"probs for rule {rule!r} must be finite probabilities in [0, 1] whose rows sum to 1; "
            f"got values in [{np.nanmin(p):.4g}, {np.nanmax(p):.4g}] and row sums in "
            f"[{np.nanmin(row_sums):.4g}, {np.nanmax(row_sums):.4g}]. "
            "Did you pass logits? Apply a softmax first."
        )
    return p


def _validate(
    y_true: Any, label_names: Sequence[str], rules: Rules
) -> tuple[np.ndarray, list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    names = check_label_names(label_names)
    y = _as_label_ids("y_true", y_true, names, None)
    if y.shape[0] == 0:
        raise DataError("y_true is empty; there are no samples to evaluate.")
    if not rules:
        raise ValueError(
            "rules is empty; pass at least one rule, e.g. {'argmax': (probs, y_pred)}."
        )
    checked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for rule, (probs, y_pred) in rules.items():
        if not rule or "/" in rule:
            raise ValueError(f"rule names must be non-empty and free of '/'; got {rule!r}.")
        p = _as_probs(rule, probs, y.shape[0], len(names))
        checked[rule] = (p, _as_label_ids(f"y_pred for rule {rule!r}", y_pred, names, y.shape[0]))
    return y, names, checked


# --------------------------------------------------------------------------- pure core


def _nll(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (natural log)."""
    p_true = probs[np.arange(y_true.shape[0]), y_true]
    return float(-np.mean(np.log(np.clip(p_true, _NLL_EPS, 1.0))))


def _rule_metrics(
    rule: str,
    y_true: np.ndarray,
    probs: np.ndarray,
    y_pred: np.ndarray,
    label_names: list[str],
    ece_bins: int,
) -> dict[str, float]:
    labels = list(range(len(label_names)))
    prec, rec, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    macro_p, macro_r, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    *_, weighted_f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="weighted", zero_division=0
    )
    out = {
        f"{rule}/accuracy": float(accuracy_score(y_true, y_pred)),
        f"{rule}/macro_f1": macro_f1(y_true, y_pred, len(label_names)),
        f"{rule}/weighted_f1": float(weighted_f1),
        f"{rule}/macro_precision": float(macro_p),
        f"{rule}/macro_recall": float(macro_r),
        f"{rule}/ece": expected_calibration_error(probs, y_true, ece_bins),
        f"{rule}/nll": _nll(probs, y_true),
    }
    for i, label in enumerate(label_names):
        out[f"{rule}/{label}/precision"] = float(prec[i])
        out[f"{rule}/{label}/recall"] = float(rec[i])
        out[f"{rule}/{label}/f1"] = float(f1[i])
        out[f"{rule}/{label}/support"] = float(support[i])
    return out


def compute_metrics(
    y_true: np.ndarray,
    label_names: Sequence[str],
    rules: Mapping[str, tuple[np.ndarray, np.ndarray]],
    ece_bins: int = 15,
) -> dict[str, float]:
    """Score every decision rule against ``y_true``; return one flat ``{name: float}`` dict.

    Args:
        y_true: ``(N,)`` integer label ids in ``[0, C)``.
        label_names: the ``C`` label names, in id order.
        rules: ``{rule: (probs (N, C), y_pred (N,))}``; ``y_pred`` need not be ``probs.argmax``
            (a thresholded rule may differ), but ECE and NLL are computed from ``probs``.
        ece_bins: number of equal-width confidence bins for the ECE.

    Keys per rule: ``accuracy, macro_f1, weighted_f1, macro_precision, macro_recall, ece, nll``
    and ``{label}/precision|recall|f1|support``. Macro averages run over all ``C`` labels, so
    a class absent from ``y_true`` counts as 0 (scikit-learn's ``labels=range(C)`` semantics).
    """
    y, names, checked = _validate(y_true, label_names, rules)
    metrics: dict[str, float] = {}
    for rule, (probs, y_pred) in checked.items():
        metrics.update(_rule_metrics(rule, y, probs, y_pred, names, ece_bins))
    return metrics


def error_analysis(
    texts: Sequence[str],
    clean_texts: Sequence[str],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    probs: np.ndarray,
    label_names: Sequence[str],
) -> pd.DataFrame:
    """Misclassified rows, most confident mistakes first.

    Columns: ``text, clean_text, true_label, predicted_label, confidence`` (probability of the
    predicted label), ``true_label_prob``, then ``prob_<label>`` per label. The index (named
    ``row``) is each sample's position in the inputs, so mistakes can be traced back.
    """
    names = check_label_names(label_names)
    y = _as_label_ids("y_true", y_true, names, None)
    n = y.shape[0]
    pred = _as_label_ids("y_pred", y_pred, names, n)
    p = _as_probs("error_analysis", probs, n, len(names))
    if len(texts) != n or len(clean_texts) != n:
        raise DataError(
            f"texts ({len(texts)}), clean_texts ({len(clean_texts)}) and y_true ({n}) "
            "must have the same length."
        )
    rows = np.arange(n)
    frame = pd.DataFrame(
        {
            "text": list(texts),
            "clean_text": list(clean_texts),
            "true_label": [names[i] for i in y],
            "predicted_label": [names[i] for i in pred],
            "confidence": p[rows, pred],
            "true_label_prob": p[rows, y],
            **{f"prob_{label}": p[:, i] for i, label in enumerate(names)},
        },
        index=pd.Index(rows, name="row"),
    )
    # Stable sort, so equally confident mistakes keep their input order.
    return frame[pred != y].sort_values("confidence", ascending=False, kind="mergesort")


# --------------------------------------------------------------------------- renderers


def _most_confused(cm: list[list[int]], names: list[str]) -> tuple[str, str, int] | None:
    """The off-diagonal cell with the largest count as ``(true, predicted, count)``."""
    off = np.array(cm, dtype=np.int64)
    np.fill_diagonal(off, 0)
    if off.max() == 0:
        return None
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    return names[i], names[j], int(off[i, j])


def _render_report_md(payload: dict[str, Any], artifacts: Mapping[str, str]) -> str:
    """Markdown summary and per-class tables, every number formatted from ``payload``."""
    m: dict[str, float] = payload["metrics"]
    names: list[str] = payload["label_names"]
    rule = payload["decision_rule"]
    rules: list[str] = list(payload["confusion_matrix"])
    lines = [
        f"# Evaluation report: {payload['run_name']}",
        "",
        "## Summary",
        "",
        f"- **Samples:** {payload['n_samples']}",
        f"- **Default decision rule:** `{rule}` (primary metric `{payload['primary_metric']}` "
        f"= {fmt(m[payload['primary_metric']])})",
    ]
    # Absent classes have F1 forced to 0 by zero_division, so rank only classes with support.
    ranked = sorted(
        (c for c in names if m[f"{rule}/{c}/support"] > 0),
        key=lambda c: m[f"{rule}/{c}/f1"],
    )
    best, worst = ranked[-1], ranked[0]
    lines += [
        f"- **Best class by F1 (`{rule}`):** {best} ({fmt(m[f'{rule}/{best}/f1'])})",
        f"- **Worst class by F1 (`{rule}`):** {worst} ({fmt(m[f'{rule}/{worst}/f1'])})",
    ]
    pair = _most_confused(payload["confusion_matrix"][rule], names)
    if pair is None:
        lines.append(f"- **Most confused pair (`{rule}`):** none, every sample is correct")
    else:
        true, pred, count = pair
        lines.append(
            f"- **Most confused pair (`{rule}`):** {true} predicted as {pred} "
            f"({count} of {int(m[f'{rule}/{true}/support'])} {true} samples)"
        )
    lines.append("")
    lines += md_table(
        ["Metric", *(f"`{r}`" for r in rules)],
        (
            [heading, *(fmt(m[f"{r}/{suffix}"]) for r in rules)]
            for suffix, heading in _SUMMARY_METRICS
        ),
    )

    prf = ("precision", "recall", "f1")
    for r in rules:
        rows = [
            [md_cell(c), *(fmt(m[f"{r}/{c}/{k}"]) for k in prf), str(int(m[f"{r}/{c}/support"]))]
            for c in names
        ]
        total = sum(int(m[f"{r}/{c}/support"]) for c in names)
        rows.append(["**macro avg**", *(fmt(m[f"{r}/macro_{k}"]) for k in prf), str(total)])
        lines += ["", f"## Per-class report: `{r}`", ""]
        lines += md_table(["Class", "Precision", "Recall", "F1", "Support"], rows)

    lines += ["", "## Artifacts", ""]
    lines += [f"- [{name}]({name})" for name in artifacts.values() if name != "report.md"]
    lines += [
        "",
        "![Confusion matrix](confusion_matrix.png)",
        "",
        "![Reliability diagram](reliability_diagram.png)",
        "",
    ]
    if "training_curves" in artifacts:
        lines += [f"![Training curves]({artifacts['training_curves']})", ""]
    return "\n".join(lines)


def _row_normalised(counts: np.ndarray) -> np.ndarray:
    row_sums = counts.sum(axis=1, keepdims=True)
    # Rows of labels absent from y_true stay 0 instead of 0/0.
    return np.divide(counts, row_sums, out=np.zeros(counts.shape), where=row_sums > 0)


def _plot_confusion(
    path: Path, cm: list[list[int]], names: list[str], rule: str, run_name: str
) -> None:
    counts = np.asarray(cm, dtype=np.int64)
    side, _ = heatmap_geometry(len(names))
    fig, axes = agg_figure((2 * side + 1, side), ncols=2)
    panels = (
        (counts, "Counts", "d", None),
        (_row_normalised(counts), "Row-normalised (recall)", ".2f", 1.0),
    )
    for ax, (mat, title, cell_format, vmax) in zip(axes[0], panels, strict=True):
        heatmap(
            fig,
            ax,
            mat,
            names,
            title=title,
            fmt=cell_format,
            vmax=vmax,
            xlabel="Predicted label",
            ylabel="True label",
        )
    fig.suptitle(f"{run_name}: confusion matrix, decision rule: {rule}")
    save_figure(fig, path)


# --------------------------------------------------------------------------- report checks


# --------------------------------------------------------------------------- writer


def write_evaluation_report(
    output_dir: Path,
    *,
    metrics: dict[str, float],
    label_names: Sequence[str],
    y_true: np.ndarray,
    rules: Mapping[str, tuple[np.ndarray, np.ndarray]],
    texts: Sequence[str],
    clean_texts: Sequence[str],
    decision_rule: str,
    run_name: str,
    config_dict: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    ece_bins: int = 15,
    log_history: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write the evaluation artifacts to ``output_dir`` atomically; return ``{name: path}``.

    ``metrics`` is what :func:`compute_metrics` returned for the same ``y_true`` and ``rules``
    (and ``ece_bins``). Writes ``metrics.json`` (source of truth), ``confusion_matrix.png`` and
    ``error_analysis.csv`` for ``decision_rule``, ``reliability_diagram.png`` for every rule,
    ``report.md``, when ``config_dict`` is given ``config.yaml``, and when the training's
    ``log_history`` is given ``training_curves.png``.
    """
    y, names, checked = _validate(y_true, label_names, rules)
    check_decision_rule(decision_rule, checked)
    needed = [f"{r}/{s}" for r in checked for s, _ in _SUMMARY_METRICS]
    needed += [f"{r}/{c}/{k}" for r in checked for c in names for k in _PER_CLASS_METRICS]
    check_metrics_keys(metrics, needed, "compute_metrics")
    check_extra(extra, RESERVED_KEYS)

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    labels = list(range(len(names)))
    payload: dict[str, Any] = {
        "run_name": run_name,
        "decision_rule": decision_rule,
        "primary_metric": f"{decision_rule}/{PRIMARY_METRIC_SUFFIX}",
        "n_samples": int(y.shape[0]),
        "label_names": names,
        "metrics": {k: float(v) for k, v in metrics.items()},
        # Rows are true labels, columns predicted, both in label_names order.
        "confusion_matrix": {
            r: confusion_matrix(y, pred, labels=labels).tolist() for r, (_, pred) in checked.items()
        },
        **(extra or {}),
    }
    files = {
        "confusion_matrix": "confusion_matrix.png",
        "reliability_diagram": "reliability_diagram.png",
        "error_analysis": "error_analysis.csv",
    }
    paths = report_paths(
        output_dir, files, config_dict=config_dict, log_history=log_history, run_name=run_name
    )

    probs, y_pred = checked[decision_rule]
    _plot_confusion(
        paths["confusion_matrix"],
        payload["confusion_matrix"][decision_rule],
        names,
        decision_rule,
        run_name,
    )
    plot_reliability(
        paths["reliability_diagram"], y, checked, payload["metrics"], ece_bins, run_name
    )
    errors = error_analysis(texts, clean_texts, y, y_pred, probs, names)
    with atomic_path(paths["error_analysis"]) as tmp:
        errors.to_csv(tmp, index=True)
    atomic_write_text(
        paths["report"], _render_report_md(payload, {key: path.name for key, path in paths.items()})
    )
    if config_dict is not None:
        write_config_yaml(paths["config"], config_dict)
    # Written last, so an existing metrics.json means the renderers above all succeeded.
    atomic_write_json(paths["metrics"], payload)
    return paths
