"""How a classifier tokenizes a cleaned text, and which of its words each token belongs to."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from emorec.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from emorec.calibration import Calibration
    from emorec.labels import LabelSpace
    from emorec.text import TextCleaner


class ExplainableClassifier(Protocol):
    """What explanations use of a classifier: an
    :class:`~emorec.inference.EmotionClassifier` loaded with the PyTorch backend. Typed by
    this protocol, so that ``explain`` does not import ``inference`` (which imports it)."""

    model: torch.nn.Module | None
    backend: Any
    tokenizer: Any
    cleaner: TextCleaner
    label_space: LabelSpace
    calibration: Calibration
    max_length: int
    batch_size: int

    def clean(self, texts: Sequence[str]) -> list[str]: ...


@dataclass
class EncodedWords:
    """A cleaned text tokenized as the classifier does, with each token's word."""

    inputs: dict[str, np.ndarray]  # model input name → (1, T) int64
    tokens: list[str]
    token_words: list[int | None]
    words: list[str]


def encode_words(classifier: ExplainableClassifier, clean_text: str) -> EncodedWords:
    """Tokenize ``clean_text`` (truncated to ``max_length``) and map tokens to its words."""
    tokenizer = classifier.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"Word-level explanations need a fast (Rust) tokenizer for character offsets; "
            f"{type(tokenizer).__name__} is a slow one. Save the model with a fast tokenizer."
        )
    spans = [match.span() for match in re.finditer(r"\S+", clean_text)]
    if not spans:
        raise DataError(
            "Nothing to explain: the text is empty after cleaning (it held only links, "
            "mentions or whitespace?)."
        )
    encoded = tokenizer(
        clean_text,
        truncation=True,
        max_length=classifier.max_length,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    starts = [start for start, _ in spans]
    token_words: list[int | None] = []
    for (start, end), special in zip(
        encoded["offset_mapping"], encoded["special_tokens_mask"], strict=True
    ):
        # Some tokenizers put the preceding space in the offsets ("▁word"): skip it.
        while start < end and clean_text[start].isspace():
            start += 1
        token_words.append(None if special or start >= end else bisect_right(starts, start) - 1)
    inputs = {
        name: np.asarray([encoded[name]], dtype=np.int64)
        for name in tokenizer.model_input_names
        if name in encoded
    }
    return EncodedWords(
        inputs=inputs,
        tokens=tokenizer.convert_ids_to_tokens(encoded["input_ids"]),
        token_words=token_words,
        words=[clean_text[start:end] for start, end in spans],
    )


def _word_scores(
    token_scores: np.ndarray, token_words: list[int | None], n_words: int
) -> np.ndarray:
    scores = np.zeros(n_words)
    for score, word in zip(token_scores, token_words, strict=True):
        if word is not None:
            scores[word] += score
    return scores
