"""The task: single- or multi-label classification, and everything that differs between them.

Like transformers' ``problem_type``, a task is decided once, from the data, and stored in the
label space (``LabelSpace.task``). Every stage asks its task instead of branching on a flag:
the activation, the raw and the calibrated decision rules, the losses and decisions that fit,
what targets look like, the metrics and the summary metric names. :data:`SINGLE_LABEL` and
:data:`MULTI_LABEL` are the only two instances.

This module is vocabulary: it imports no stage, no torch and (until a method needs it) no scipy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from emorec.errors import ConfigError, DataError

Decision = Literal["argmax", "bias", "threshold"]
# Labels of one row as the data gives them: a name, or (multi-label) a list of names.
RowLabels = str | Sequence[str]


@dataclass(frozen=True)
class Task:
    """What differs between single- and multi-label classification; see the module docstring."""

    name: Literal["single_label", "multi_label"]
    multi_label: bool
    # The ``problem_type`` transformers stores in a model's config.
    problem_type: str
    # Human name for messages ("single-label").
    title: str
    losses: tuple[str, ...]
    # Decision rules a calibration may use; the first is the rule of an untuned model.
    decisions: tuple[Decision, ...]
    # What ``calibration.decision: auto`` resolves to.
    tuned_decision: Decision
    # The name reports give the untuned rule ("argmax", "fixed" 0.5 threshold).
    raw_rule: str
    # What the tuned decision adjusts, for messages ("per-class offsets", "thresholds").
    tuned_parameters: str
    # Whether a row may carry several labels, or none at all.
    allows_several_labels: bool
    allows_no_label: bool
    # The headline metrics of an evaluation (metrics.json keys without the rule prefix), most
    # important first: the CLI's table and the model card's summary show these.
    summary_metrics: tuple[str, ...]

    # ---- activation -------------------------------------------------------------------
    def probabilities(self, logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
        """Probabilities (N, C): softmax over classes, or an independent sigmoid per label."""
        from scipy.special import expit, softmax

        scaled = np.asarray(logits, dtype=np.float64) / temperature
        return expit(scaled) if self.multi_label else softmax(scaled, axis=1)

    def logits_from_probabilities(self, probs: np.ndarray, eps: float = 1e-7) -> np.ndarray:
        """Logits whose :meth:`probabilities` are ``probs`` (clipped to keep them finite)."""
        clipped = np.clip(probs, eps, 1 - eps)
        if self.multi_label:
            return np.log(clipped) - np.log1p(-clipped)
        return np.log(clipped)

    # ---- targets ------------------------------------------------------------------------
    @property
    def untuned_decision(self) -> Decision:
        return self.decisions[0]

    def target_shape(self, n_rows: int, n_labels: int) -> tuple[int, ...]:
        return (n_rows, n_labels) if self.multi_label else (n_rows,)

    def encode(self, labels: Sequence[RowLabels], names: Sequence[str]) -> np.ndarray:
        """Targets of ``labels``: ``(N,)`` int64 indices, or ``(N, C)`` float32 multi-hot."""
        index = {name: i for i, name in enumerate(names)}
        if not self.multi_label:
            try:
                return np.fromiter((index[label] for label in labels), np.int64, len(labels))
            except (KeyError, TypeError) as error:
                raise DataError(
                    f"Unknown label {error.args[0]!r}; valid labels: {list(names)}."
                ) from None
        targets = np.zeros((len(labels), len(names)), dtype=np.float32)
        for row, row_labels in enumerate(labels):
            for name in [row_labels] if isinstance(row_labels, str) else row_labels:
                if name not in index:
                    raise DataError(
                        f"Unknown label {name!r} in row {row}; valid labels: {list(names)}."
                    )
                targets[row, index[name]] = 1.0
        return targets

    def counts(self, targets: np.ndarray, n_labels: int) -> np.ndarray:
        """Examples per class (single-label) or positives per label (multi-label), (C,)."""
        if self.multi_label:
            return np.asarray(targets).sum(axis=0).astype(np.int64)
        return np.bincount(np.asarray(targets), minlength=n_labels)

    def validate_targets(self, y: Any, n_rows: int, n_labels: int, name: str = "y") -> np.ndarray:
        """``y`` checked against this task's target layout, as int64; else a DataError."""
        arr = np.asarray(y)
        shape = self.target_shape(n_rows, n_labels)
        if arr.shape != shape:
            if self.multi_label:
                what, hint = "a multi-hot matrix", ""
            else:
                what, hint = "class indices", " (Multi-hot (N, C) labels need multi_label=True.)"
            raise DataError(
                f"{name} must be {what} of shape {shape} for {self.title} data; "
                f"got shape {arr.shape}.{hint}"
            )
        if self.multi_label:
            if not np.all((arr == 0) | (arr == 1)):
                raise DataError(f"{name} must hold only 0 and 1 (multi-hot); got other values.")
            return arr.astype(np.int64)
        if not np.issubdtype(arr.dtype, np.number) or (
            not np.issubdtype(arr.dtype, np.integer) and not np.all(np.mod(arr, 1) == 0)
        ):
            raise DataError(f"{name} must hold integer class indices; got dtype {arr.dtype}.")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= n_labels):
            raise DataError(
                f"{name} must hold class indices in [0, {n_labels}); got values in "
                f"[{arr.min()}, {arr.max()}]."
            )
        return arr

    def check_batch_shapes(self, logits_shape: Sequence[int], targets_shape: Sequence[int]) -> None:
        """A training batch's targets must match its (B, C) logits; else a DataError."""
        expected = tuple(logits_shape) if self.multi_label else (logits_shape[0],)
        if tuple(targets_shape) != expected:
            kind = "(B, C) multi-hot" if self.multi_label else "(B,) class indices"
            raise DataError(
                f"targets must be {kind} matching logits {tuple(logits_shape)}; "
                f"got {tuple(targets_shape)}."
            )

    def row_labels(self, mapped: list[str]) -> RowLabels:
        """One row's labels after mapping: the list (multi-label) or its single name."""
        if self.multi_label:
            return mapped
        return mapped[0] if mapped else ""

    # ---- losses and decisions -------------------------------------------------------------
    def check_loss(self, loss_type: str) -> None:
        """A loss that does not fit this task is a ConfigError naming the ones that do."""
        if loss_type in self.losses:
            return
        other = MULTI_LABEL if self is SINGLE_LABEL else SINGLE_LABEL
        raise ConfigError(
            f"loss_type={loss_type!r} is a {other.title} loss but this is a {self.title} "
            f"problem; {self.title} problems take one of {', '.join(map(repr, self.losses))} "
            f"({other.title} problems take the others)."
        )

    def resolve_decision(self, requested: str) -> Decision:
        """``auto`` or a decision rule checked to fit this task; else a ConfigError."""
        if requested == "auto":
            return self.tuned_decision
        if requested not in self.decisions:
            raise ConfigError(
                f"calibration decision={requested!r} does not fit a {self.title} problem; "
                f"use one of {', '.join(map(repr, (*self.decisions, 'auto')))}."
            )
        return requested  # type: ignore[return-value]

    def check_decision(self, decision: str) -> Decision:
        """A stored decision rule that does not fit this task is a ConfigError."""
        if decision not in self.decisions:
            raise ConfigError(
                f"Calibration: decision must be one of {self.decisions} for {self.title}; "
                f"got {decision!r}."
            )
        return decision  # type: ignore[return-value]

    def raw_decisions(self, logits: np.ndarray, threshold: float) -> np.ndarray:
        """Decisions of an uncalibrated model: argmax (N,), or sigmoid >= threshold (N, C)."""
        if self.multi_label:
            return (self.probabilities(logits) >= threshold).astype(np.int64)
        return np.asarray(logits).argmax(axis=1)

    def decided_indices(
        self, decided_row: np.ndarray, probs_row: np.ndarray | None = None
    ) -> list[int]:
        """Label indices one row of decisions names; most probable first when ``probs_row``."""
        if not self.multi_label:
            return [int(decided_row)]
        chosen = np.flatnonzero(decided_row)
        if probs_row is not None:
            chosen = chosen[np.argsort(-probs_row[chosen], kind="stable")]
        return [int(i) for i in chosen]


SINGLE_LABEL = Task(
    name="single_label",
    multi_label=False,
    problem_type="single_label_classification",
    title="single-label",
    losses=("cross_entropy", "weighted_cross_entropy", "focal"),
    decisions=("argmax", "bias"),
    tuned_decision="bias",
    raw_rule="argmax",
    tuned_parameters="per-class offsets",
    allows_several_labels=False,
    allows_no_label=False,
    summary_metrics=(
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "macro_precision",
        "macro_recall",
        "ece",
        "nll",
    ),
)
MULTI_LABEL = Task(
    name="multi_label",
    multi_label=True,
    problem_type="multi_label_classification",
    title="multi-label",
    losses=("bce", "focal_bce", "asymmetric"),
    decisions=("threshold",),
    tuned_decision="threshold",
    raw_rule="fixed",
    tuned_parameters="thresholds",
    allows_several_labels=True,
    allows_no_label=True,
    summary_metrics=(
        "micro_f1",
        "macro_f1",
        "weighted_f1",
        "samples_f1",
        "roc_auc_macro",
        "hamming_score",
        "exact_match",
        "ece",
    ),
)
TASKS = (SINGLE_LABEL, MULTI_LABEL)


def task_for(multi_label: bool) -> Task:
    """The task a stored ``multi_label`` flag (emorec.json, calibration.json) names."""
    return MULTI_LABEL if multi_label else SINGLE_LABEL


def as_task(task: Task | bool, multi_label: bool | None = None) -> Task:
    """A task from what callers of the former API pass: a Task, or the ``multi_label`` flag
    (positionally in the task's place, or as the keyword, which wins)."""
    if multi_label is not None:
        return task_for(multi_label)
    return task if isinstance(task, Task) else task_for(bool(task))
