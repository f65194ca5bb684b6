"""Deterministic splitting, subsampling and cross-split leakage removal.

Single-label data is stratified on the label (scikit-learn); multi-label data (list-valued
labels) with iterative stratification (Sechidis et al. 2011, ``iterative-stratification``),
which keeps every label's share in each part instead of needing each label combination twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from sklearn.model_selection import train_test_split

from emorec.errors import DataError
from emorec.labels import LabelSpace


def _multi_hot(frame: pd.DataFrame) -> np.ndarray | None:
    """(N, C) indicator of a multi-label frame, None for single-label (or < 2 labels)."""
    labels = frame["label"].tolist()
    if all(isinstance(label, str) for label in labels):
        return None
    try:
        return LabelSpace.from_labels(labels).encode(labels)
    except DataError:  # fewer than 2 distinct labels: nothing to stratify on
        return None


def _stratify_key(frame: pd.DataFrame) -> pd.Series | None:
    """Single-label classes usable for stratification, or None when one is too small."""
    key = frame["label"]
    if not all(isinstance(label, str) for label in key):
        return None  # list labels that _multi_hot could not stratify on
    return key if key.value_counts().min() >= 2 else None


def _multilabel_indices(
    y: np.ndarray, test_size: float | int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (rest, test) with each label's share preserved; same seed and y, same split."""
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
    rest, test = next(splitter.split(np.zeros(len(y)), y))
    return rest, test


def stratified_subsample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows drawn with the class (or per-label) proportions of ``frame``.

    All rows when ``n >= len(frame)``. Iterative stratification may hand back a few rows more
    than ``n`` to keep rare labels; a seeded draw trims those, so the result has exactly n.
    """
    if n >= len(frame):
        return frame
    y = _multi_hot(frame)
    try:
        if y is not None:
            _, picked = _multilabel_indices(y, n, seed)
            kept = frame.iloc[picked]
            if len(kept) > n:
                kept = kept.sample(n=n, random_state=seed)
        else:
            kept, _ = train_test_split(
                frame, train_size=n, random_state=seed, stratify=_stratify_key(frame)
            )
    except ValueError:  # a class too rare for the requested size: fall back to a seeded draw
        kept = frame.sample(n=n, random_state=seed)
    return kept.sort_index()


def split_single_source(
    frame: pd.DataFrame, validation_size: float, test_size: float, seed: int
) -> dict[str, pd.DataFrame]:
    """Stratified train/validation/test split of one table; same seed, same split."""
    y = _multi_hot(frame)
    share = validation_size / (1 - test_size)  # of what is left once test is taken
    try:
        if y is not None:
            rest_at, test_at = _multilabel_indices(y, test_size, seed)
            train_at, validation_at = _multilabel_indices(y[rest_at], share, seed)
            train, validation = frame.iloc[rest_at[train_at]], frame.iloc[rest_at[validation_at]]
            test = frame.iloc[test_at]
        else:
            key = _stratify_key(frame)
            rest, test = train_test_split(
                frame, test_size=test_size, random_state=seed, stratify=key
            )
            rest_key = _stratify_key(rest) if key is not None else None
            train, validation = train_test_split(
                rest, test_size=share, random_state=seed, stratify=rest_key
            )
    except ValueError:
        rest, test = train_test_split(frame, test_size=test_size, random_state=seed)
        train, validation = train_test_split(rest, test_size=share, random_state=seed)
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
    """Rows per label (a multi-label row counts once for each of its labels), by name."""
    counts = Counter(
        name for label in frame["label"] for name in ([label] if isinstance(label, str) else label)
    )
    return {name: counts[name] for name in sorted(counts)}
