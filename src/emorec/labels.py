"""The label schema: decided once from the data, saved with the model, read back by every stage."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emorec.errors import DataError
from emorec.task import Task, task_for

Label = str | Sequence[str]


@dataclass(frozen=True)
class LabelSpace:
    """Ordered label names and whether a text may carry several of them (the :attr:`task`).

    Single-label targets are class indices; multi-label targets are multi-hot float vectors,
    built only by :meth:`encode` so that every stage agrees on the layout.
    """

    names: tuple[str, ...]
    multi_label: bool = False

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise DataError(
                f"A label space needs at least 2 labels, got {list(self.names)}. "
                "Check the label column of your data, or `model.labels` in the config (`null` "
                "infers the labels from the training data)."
            )
        duplicates = sorted({n for n in self.names if self.names.count(n) > 1})
        if duplicates:
            raise DataError(f"Label names must be unique; repeated: {duplicates}.")
        if any(not isinstance(n, str) or not n.strip() for n in self.names):
            raise DataError(f"Label names must be non-empty strings, got {list(self.names)}.")

    @classmethod
    def from_labels(cls, labels: Iterable[Label], order: Sequence[str] | None = None) -> LabelSpace:
        """Build the space from observed labels.

        A list-valued label means multi-label. ``order`` fixes the published label order (and
        may list labels absent from this data); otherwise names are sorted alphabetically.
        """
        seen: set[str] = set()
        multi_label = False
        for label in labels:
            if isinstance(label, str):
                seen.add(label)
            else:
                multi_label = True
                seen.update(label)
        if order is None:
            return cls(tuple(sorted(seen)), multi_label)
        unknown = sorted(seen - set(order))
        if unknown:
            raise DataError(
                f"The data has labels {unknown} that are not in the configured label list "
                f"{list(order)}. Add them to `model.labels`, set `model.labels: null` to infer "
                "the labels from the training data, or fix the data."
            )
        return cls(tuple(order), multi_label)

    @property
    def num_labels(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    @property
    def task(self) -> Task:
        """Single- or multi-label: what every stage asks instead of branching on a flag."""
        return task_for(self.multi_label)

    @property
    def problem_type(self) -> str:
        """The ``problem_type`` transformers stores in the model config."""
        return self.task.problem_type

    def encode(self, labels: Sequence[Label]) -> np.ndarray:
        """Map labels to targets: ``(N,)`` int64 indices, or ``(N, C)`` float32 multi-hot."""
        return self.task.encode(labels, self.names)

    def counts(self, targets: np.ndarray) -> np.ndarray:
        """Examples per class (single-label) or positives per label (multi-label)."""
        return self.task.counts(targets, self.num_labels)

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "multi_label": self.multi_label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelSpace:
        return cls(tuple(data["names"]), bool(data.get("multi_label", False)))
