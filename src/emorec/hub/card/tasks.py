"""What the card says differently for single- and multi-label models, one record per task.

The task (:mod:`emorec.task`) is decided once from ``emorec.json``; every section then reads
its :class:`CardTask` instead of branching on the ``multi_label`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from emorec.task import MULTI_LABEL, SINGLE_LABEL, Task, task_for

# A model-index metric: (metrics.json key, Hub metric id, display name, metric args).
Headline = tuple[str, str, str, dict[str, str] | None]


@dataclass(frozen=True)
class CardTask:
    """The card's wording and metric choices for one task."""

    task: Task
    # Hub tags beyond the ones every emorec card has.
    tags: tuple[str, ...]
    # Hub metric ids of the ``metrics`` key, and the model-index metrics of the default rule.
    hub_metrics: tuple[str, ...]
    headline: tuple[Headline, ...]
    # What one output is called ("class", "label") and how many a text gets.
    unit: str
    outputs_per_text: str
    # How the calibrated rule decides, after "temperature scaling plus".
    calibrated_rule: str
    # The activation plain transformers applies, and the pipeline argument that selects it.
    activation: str
    pipeline_args: str

    @property
    def title(self) -> str:
        """``single-label`` or ``multi-label``."""
        return self.task.title

    @property
    def summary(self) -> tuple[str, ...]:
        """Rows of the evaluation summary table: the task's headline metrics."""
        return self.task.summary_metrics

    @property
    def raw_rule(self) -> str:
        """The uncalibrated rule's name in metrics.json (``argmax``, ``fixed``)."""
        return self.task.raw_rule


CARD_TASKS = {
    SINGLE_LABEL.name: CardTask(
        task=SINGLE_LABEL,
        tags=(),
        hub_metrics=("accuracy", "f1"),
        headline=(
            ("accuracy", "accuracy", "Accuracy", None),
            ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
        ),
        unit="class",
        outputs_per_text="Each text gets exactly one label.",
        calibrated_rule="per-class decision offsets tuned on validation",
        activation="softmax",
        pipeline_args="",
    ),
    MULTI_LABEL.name: CardTask(
        task=MULTI_LABEL,
        tags=("multi-label-classification",),
        hub_metrics=("f1", "roc_auc"),
        headline=(
            ("micro_f1", "f1", "Micro F1", {"average": "micro"}),
            ("macro_f1", "f1", "Macro F1", {"average": "macro"}),
            ("roc_auc_macro", "roc_auc", "Macro ROC-AUC", {"average": "macro"}),
        ),
        unit="label",
        outputs_per_text="Each text gets zero or more of the labels.",
        calibrated_rule="per-label thresholds tuned on validation",
        activation="sigmoid",
        pipeline_args=', function_to_apply="sigmoid"',
    ),
}
SINGLE_LABEL_SUMMARY = CARD_TASKS[SINGLE_LABEL.name].summary
MULTI_LABEL_SUMMARY = CARD_TASKS[MULTI_LABEL.name].summary


def card_task(multi_label: bool) -> CardTask:
    """The card's record for the task a stored ``multi_label`` flag (emorec.json) names."""
    return CARD_TASKS[task_for(multi_label).name]
