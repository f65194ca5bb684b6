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

The metrics core lives in :mod:`emorec.evaluation.multi_label_metrics`, the report's tables in
:mod:`emorec.evaluation.multi_label_render` and its figures in
:mod:`emorec.evaluation.multi_label_figures`; this module writes the report from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emorec._io import atomic_path, atomic_write_json, atomic_write_text
from emorec.evaluation.common import (
    PRIMARY_METRIC_SUFFIX,
    RESERVED_KEYS,
    check_decision_rule,
    check_extra,
    check_metrics_keys,
    plot_reliability,
    report_paths,
    write_config_yaml,
)
from emorec.evaluation.multi_label_figures import (
    _plot_cooccurrence,
    _plot_precision_recall,
    _plot_threshold_curves,
)
from emorec.evaluation.multi_label_metrics import (
    _AVERAGED_METRICS,
    _PER_LABEL_METRICS,
    _SUMMARY_METRICS,
    _validate,
    compute_multilabel_metrics,
    multilabel_error_analysis,
)
from emorec.evaluation.multi_label_metrics import Rules as Rules
from emorec.evaluation.multi_label_metrics import Thresholds as Thresholds
from emorec.evaluation.multi_label_render import _per_label_frame, _render_report_md

__all__ = [
    "compute_multilabel_metrics",
    "multilabel_error_analysis",
    "write_multilabel_report",
]

_ML_RESERVED_KEYS = RESERVED_KEYS | {
    "multi_label",
    "label_cardinality",
    "label_cooccurrence",
    "label_confusion",
}


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
        "per_label": "per_label.csv",
        "error_analysis": "error_analysis.csv",
        "threshold_curves": "threshold_curves.png",
        "precision_recall": "per_label_precision_recall.png",
        "cooccurrence": "label_cooccurrence.png",
        "reliability_diagram": "reliability_diagram.png",
    }
    paths = report_paths(
        output_dir, files, config_dict=config_dict, log_history=log_history, run_name=run_name
    )
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
    names_by_key = {key: path.name for key, path in paths.items()}
    atomic_write_text(paths["report"], _render_report_md(payload, rule_names, names_by_key))
    if config_dict is not None:
        write_config_yaml(paths["config"], config_dict)
    # Written last, so an existing metrics.json means the renderers above all succeeded.
    atomic_write_json(paths["metrics"], payload)
    return paths
