"""One entry point for every task: score a split's decisions and write its report.

Single- and multi-label evaluation compute different metrics and draw different figures; the
workflows call :func:`evaluate_decisions` and never choose between them themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emorec.evaluation.multi_label import compute_multilabel_metrics, write_multilabel_report
from emorec.evaluation.single_label import compute_metrics, write_evaluation_report
from emorec.task import MULTI_LABEL, SINGLE_LABEL, Task

# task name → (metrics, report writer, whether both take the rules' thresholds)
_EVALUATORS = {
    SINGLE_LABEL.name: (compute_metrics, write_evaluation_report, False),
    MULTI_LABEL.name: (compute_multilabel_metrics, write_multilabel_report, True),
}


def evaluate_decisions(
    task: Task,
    output_dir: Path,
    *,
    targets: np.ndarray,
    rules: Mapping[str, tuple[np.ndarray, np.ndarray]],
    thresholds: Mapping[str, float | np.ndarray],
    ece_bins: int,
    **report: Any,
) -> tuple[dict[str, float], dict[str, Path]]:
    """Metrics of every rule ``{name: (probs, decisions)}`` and the report's files.

    ``thresholds`` (the probability each rule's labels must pass) are reported for
    multi-label models; ``report`` holds the report's other fields (``label_names``,
    ``texts``, …; see :func:`emorec.evaluation.write_evaluation_report`).
    """
    compute, write, takes_thresholds = _EVALUATORS[task.name]
    per_rule: dict[str, Any] = {"thresholds": thresholds} if takes_thresholds else {}
    metrics = compute(targets, report["label_names"], rules, ece_bins=ece_bins, **per_rule)
    artifacts = write(
        output_dir,
        metrics=metrics,
        y_true=targets,
        rules=rules,
        ece_bins=ece_bins,
        **per_rule,
        **report,
    )
    return metrics, artifacts
