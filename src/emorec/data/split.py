"""Deterministic splitting, subsampling and cross-split leakage removal."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split


def _stratify_key(frame: pd.DataFrame) -> pd.Series | None:
    """Labels usable for stratification, or None when a class is too small to split."""
    if frame["label"].map(lambda v: not isinstance(v, str)).any():
        # Multi-label rows: stratify on the label combination when every one is frequent enough.
        key = frame["label"].map(lambda v: "|".join(sorted(v)) if not isinstance(v, str) else v)
    else:
        key = frame["label"]
    return key if key.value_counts().min() >= 2 else None


def stratified_subsample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn with the class proportions of ``frame`` (all rows when n ≥ len)."""
    if n >= len(frame):
        return frame
    key = _stratify_key(frame)
    try:
        kept, _ = train_test_split(frame, train_size=n, random_state=seed, stratify=key)
    except ValueError:  # a class too rare for the requested size: fall back to a seeded draw
        kept = frame.sample(n=n, random_state=seed)
    return kept.sort_index()


def split_single_source(
    frame: pd.DataFrame, validation_size: float, test_size: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Stratified train/validation/test split of one table; same seed, same split."""
    key = _stratify_key(frame)
    try:
        rest, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=key)
        rest_key = _stratify_key(rest) if key is not None else None
        train, validation = train_test_split(
            rest, test_size=validation_size / (1 - test_size), random_state=seed, stratify=rest_key
        )
    except ValueError:
        rest, test = train_test_split(frame, test_size=test_size, random_state=seed)
        train, validation = train_test_split(
            rest, test_size=validation_size / (1 - test_size), random_state=seed
        )
    return {
        "train": train.sort_index(),
        "validation": validation.sort_index(),
        "test": test.sort_index(),
    }


def drop_duplicates_within(
    frame: pd.DataFrame, key: str = "clean_text"
) -> tuple[pd.DataFrame, int]:
    """Keep the first of repeated texts in a single-file source before it is split."""
    duplicated = frame[key].duplicated(keep="first")
    return frame[~duplicated], int(duplicated.sum())


def remove_leakage(
    splits: dict[str, pd.DataFrame], policy: str, key: str = "clean_text"
) -> dict[str, Any]:
    """Remove texts shared across splits, in place; return what was found and removed.

    ``drop_from_train`` keeps published evaluation sets intact; ``drop_from_eval`` keeps all
    training data; ``keep`` only reports.
    """
    train, validation, test = (set(splits[s][key]) for s in ("train", "validation", "test"))
    report: dict[str, Any] = {
        "train_test_overlap": len(train & test),
        "train_validation_overlap": len(train & validation),
        "validation_test_overlap": len(validation & test),
        "policy": policy,
        "removed": {"train": 0, "validation": 0, "test": 0},
    }
    if policy == "drop_from_train":
        drops = {"train": validation | test}
    elif policy == "drop_from_eval":
        drops = {"validation": train, "test": train | validation}
    else:
        drops = {}
    for split, banned in drops.items():
        mask = splits[split][key].isin(banned)
        report["removed"][split] = int(mask.sum())
        splits[split] = splits[split][~mask]
    return report


def label_distribution(frame: pd.DataFrame) -> dict[str, int]:
    labels = frame["label"].map(lambda v: [v] if isinstance(v, str) else list(v))
    values, counts = np.unique(
        np.concatenate(labels.to_numpy()) if len(labels) else [], return_counts=True
    )
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}
