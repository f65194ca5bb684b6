"""Long texts: token windows, length-sorted padded batches, and merging windows per text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from emorec.calibration import Calibration
from emorec.errors import ConfigError

# Merged window probabilities are mapped back to logits; clipping keeps log(p) finite.
_PROB_EPS = 1e-7


def encode(
    tokenizer: Any,
    clean_texts: list[str],
    max_length: int,
    long_text: str = "truncate",
    window_overlap: int | None = None,
) -> tuple[dict[str, list[list[int]]], np.ndarray]:
    """Token ids of each model input, and the text each row belongs to.

    Truncating, row i is text i. With windows a long text gives several rows, consecutive
    windows sharing ``window_overlap`` tokens (HF tokenizers call it ``stride``).
    """
    if long_text == "truncate":
        encoded = tokenizer(clean_texts, truncation=True, max_length=max_length)
        return dict(encoded), np.arange(len(clean_texts))
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError("long_text='window' needs a fast (Rust) tokenizer.")
    room = max_length - tokenizer.num_special_tokens_to_add()
    overlap = room // 2 if window_overlap is None else window_overlap
    encoded = dict(
        tokenizer(
            clean_texts,
            truncation=True,
            max_length=max_length,
            stride=overlap,
            return_overflowing_tokens=True,
        )
    )
    owner = np.asarray(encoded.pop("overflow_to_sample_mapping"), dtype=np.int64)
    return encoded, owner


def padded_batches(
    tokenizer: Any, encoded: dict[str, list[list[int]]], batch_size: int
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Length-sorted batches padded to their longest row: ``(row indices, inputs)``."""
    lengths = np.fromiter(map(len, encoded["input_ids"]), np.int64, len(encoded["input_ids"]))
    order = np.argsort(lengths, kind="stable")
    pad_values = {
        "input_ids": tokenizer.pad_token_id or 0,
        "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0),
    }
    left = getattr(tokenizer, "padding_side", "right") == "left"
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        width = int(lengths[index[-1]])  # sorted ascending: the last row is the longest
        batch = {}
        for name, rows in encoded.items():
            array = np.full((len(index), width), pad_values.get(name, 0), dtype=np.int64)
            for r, i in enumerate(index):
                row = rows[i]
                if left:
                    array[r, width - len(row) :] = row
                else:
                    array[r, : len(row)] = row
            batch[name] = array
        yield index, batch


def merge_windows(
    logits: np.ndarray, owner: np.ndarray, n_texts: int, rule: Calibration, aggregate: str
) -> np.ndarray:
    """Merge window probabilities per text (``aggregate``: ``"mean"`` or ``"max"``), then
    map them back to logits for ``rule``.

    The returned z satisfies ``rule.probabilities(z) == merged`` (up to renormalising
    single-label "max"), so calibration and decisions work unchanged on merged windows.
    """
    probs = rule.probabilities(logits)  # (R, C)
    if aggregate == "mean":
        merged = np.zeros((n_texts, probs.shape[1]))
        np.add.at(merged, owner, probs)
        merged /= np.bincount(owner, minlength=n_texts)[:, None]
    else:
        merged = np.zeros((n_texts, probs.shape[1]))
        np.maximum.at(merged, owner, probs)
    inverse = rule.task.logits_from_probabilities(merged, _PROB_EPS)
    return (inverse * rule.temperature).astype(np.float32)
