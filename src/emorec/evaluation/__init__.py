"""Evaluation: metrics per task, the shared figures and report rendering, the report writers."""

from __future__ import annotations

from emorec.evaluation.common import (
    PRIMARY_METRIC_SUFFIX,
    TRAINING_CURVES_FILE,
    plot_training_curves,
    training_curves,
)
from emorec.evaluation.multi_label import (
    compute_multilabel_metrics,
    multilabel_error_analysis,
    write_multilabel_report,
)
from emorec.evaluation.single_label import compute_metrics, error_analysis, write_evaluation_report

__all__ = [
    "PRIMARY_METRIC_SUFFIX",
    "TRAINING_CURVES_FILE",
    "compute_metrics",
    "compute_multilabel_metrics",
    "error_analysis",
    "multilabel_error_analysis",
    "plot_training_curves",
    "training_curves",
    "write_evaluation_report",
    "write_multilabel_report",
]
