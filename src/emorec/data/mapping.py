"""Label mapping from config: merge labels into groups, rename them, keep a subset.

The mapping is resolved once into a table ``source label -> mapped labels`` and applied to
every split identically, right after reading and before the label space is built. Names are
checked against the labels the source knows (its names file or ClassLabel, else the labels
seen in any split), so a typo fails loudly instead of producing an empty label.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from emorec._io import open_text
from emorec.config import LabelMappingConfig
from emorec.errors import DataError
from emorec.task import RowLabels, Task, task_for


@dataclass(frozen=True)
class ResolvedMapping:
    """``targets[source]``: the mapped labels of one source label (empty: it is dropped)."""

    targets: dict[str, tuple[str, ...]]
    labels: list[str]  # mapped label order: keep's order, else groups then unmapped labels


def load_groups_file(path: Path) -> dict[str, list[str]]:
    """Read ``{group: [source labels]}`` JSON, e.g. GoEmotions' ``ekman_mapping.json``."""
    if not path.is_file():
        raise DataError(
            f"Label groups file not found: {path} (resolved to {path.resolve()}). Relative "
            "paths start from the current directory; set `data.label_mapping.groups_file`."
        )
    try:
        with open_text(path) as handle:
            groups = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid UTF-8 JSON: {error}.") from None
    valid = isinstance(groups, dict) and all(
        isinstance(members, list) and members and all(isinstance(m, str) for m in members)
        for members in groups.values()
    )
    if not valid or not groups:
        raise DataError(
            f"{path} must hold a JSON object mapping each group to a non-empty list of label "
            'names, like {"joy": ["joy", "amusement"], "anger": ["anger", "annoyance"]}.'
        )
    return groups


def known_labels(frames: dict[str, pd.DataFrame], source_order: Sequence[str] | None) -> list[str]:
    """The source's labels: its published order, then any other label seen, sorted."""
    seen: set[str] = set()
    for frame in frames.values():
        for label in frame["label"]:
            if isinstance(label, str):
                seen.add(label)
            else:
                seen.update(label)
    order = list(source_order or [])
    return order + sorted(seen - set(order))


def detect_task(frames: dict[str, pd.DataFrame]) -> Task:
    """A list-valued label anywhere means multi-label (as for the label space)."""
    labels = (label for frame in frames.values() for label in frame["label"])
    return task_for(any(not isinstance(label, str) for label in labels))


def _check_known(names: Iterable[str], valid: Sequence[str], what: str) -> None:
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            guess = f" Did you mean {close[0]!r}?" if close else ""
            raise DataError(
                f"Label mapping: {what} names {name!r}, which is not a label here.{guess} "
                f"Valid labels: {list(valid)}."
            )


def resolve_mapping(
    config: LabelMappingConfig, source_labels: Sequence[str], task: Task
) -> ResolvedMapping:
    """Turn ``config`` into a per-label table; every name is checked, every clash is an error."""
    groups = config.groups
    if config.groups_file is not None:
        groups = load_groups_file(Path(config.groups_file))
    targets: dict[str, list[str]]  # source label -> the labels it becomes
    order: list[str]
    if groups is None:
        targets = {name: [name] for name in source_labels}
        order = list(source_labels)
    else:
        targets = {name: [] for name in source_labels}
        where = f"`groups_file` {config.groups_file}" if config.groups_file else "`groups`"
        for group, members in groups.items():
            _check_known(members, source_labels, f"{where} group {group!r}")
            for member in members:
                if group not in targets[member]:
                    targets[member].append(group)
        shared = [name for name, mapped in targets.items() if len(mapped) > 1]
        if shared and not task.allows_several_labels:
            raise DataError(
                f"Label mapping: {shared[0]!r} is in groups {targets[shared[0]]}, but the "
                "data is single-label, so each label can join one group only."
            )
        unmapped = [name for name, mapped in targets.items() if not mapped]
        order = list(groups)
        if config.unmapped == "keep":
            clashes = [name for name in unmapped if name in groups]
            if clashes:
                raise DataError(
                    f"Label mapping: {clashes[0]!r} is a group name and also a source label in "
                    f"no group, so the two would merge unnoticed. List {clashes[0]!r} in its "
                    "group, or rename the group."
                )
            for name in unmapped:
                targets[name] = [name]
            order += unmapped

    if config.rename:
        _check_known(config.rename, order, "`rename` (applied after groups)")
        renamed = [config.rename.get(name, name) for name in order]
        repeated = sorted({n for n in renamed if renamed.count(n) > 1})
        if repeated:
            raise DataError(
                f"Label mapping: `rename` gives several labels the name(s) {repeated}. Renaming "
                "does not merge labels; use `groups` for that."
            )
        order = renamed
        targets = {
            src: [config.rename.get(t, t) for t in mapped] for src, mapped in targets.items()
        }

    if config.keep is not None:
        _check_known(config.keep, order, "`keep` (applied after groups and rename)")
        kept = set(config.keep)
        order = list(config.keep)
        targets = {src: [t for t in mapped if t in kept] for src, mapped in targets.items()}

    rank = {name: i for i, name in enumerate(order)}
    return ResolvedMapping(
        {src: tuple(sorted(mapped, key=rank.__getitem__)) for src, mapped in targets.items()},
        order,
    )


def _map_frame(
    frame: pd.DataFrame, mapping: ResolvedMapping, task: Task, allow_empty: bool
) -> tuple[pd.DataFrame, int]:
    """The frame with mapped labels, minus rows left with none; and how many had none."""
    rank = {name: i for i, name in enumerate(mapping.labels)}
    mapped: list[RowLabels] = []
    keep: list[bool] = []
    emptied = 0
    for label in frame["label"]:
        names = [label] if isinstance(label, str) else label
        # A row of anger + annoyance maps to ["anger"] once, in label-space order.
        row = sorted({t for name in names for t in mapping.targets[name]}, key=rank.__getitem__)
        if names and not row:
            emptied += 1
        keep.append(bool(row) or (task.allows_no_label and allow_empty))
        mapped.append(task.row_labels(row))
    labels = pd.Series(mapped, index=frame.index, dtype=object)  # a list per cell, never 2-D
    return frame.assign(label=labels)[keep], emptied


def apply_label_mapping(
    frames: dict[str, pd.DataFrame],
    config: LabelMappingConfig,
    source_order: Sequence[str] | None,
    allow_empty_labels: bool = False,
) -> tuple[dict[str, pd.DataFrame], list[str] | None, dict[str, Any] | None]:
    """Map the labels of every split; returns the frames, the label order and a report.

    Rows left with no label are dropped (kept as 'none of these' examples when the data is
    multi-label and ``allow_empty_labels``) and counted per split in the report. Without a
    configured mapping the frames and ``source_order`` pass through and the report is None.
    """
    if not config.active:
        return frames, list(source_order) if source_order else None, None
    source_labels = known_labels(frames, source_order)
    task = detect_task(frames)
    mapping = resolve_mapping(config, source_labels, task)
    mapped: dict[str, pd.DataFrame] = {}
    report: dict[str, Any] = {
        "source_labels": source_labels,
        "labels": mapping.labels,
        "rows_before": {},
        "rows_left_without_label": {},
        "rows_dropped": {},
        "rows_after": {},
    }
    for split, frame in frames.items():
        mapped[split], emptied = _map_frame(frame, mapping, task, allow_empty_labels)
        report["rows_before"][split] = len(frame)
        report["rows_left_without_label"][split] = emptied
        report["rows_dropped"][split] = len(frame) - len(mapped[split])
        report["rows_after"][split] = len(mapped[split])
        if mapped[split].empty:
            raise DataError(
                f"Label mapping left split {split!r} with no rows: none of its {len(frame)} "
                f"rows has a label among {mapping.labels}. Check `data.label_mapping`."
            )
    return mapped, mapping.labels, report
