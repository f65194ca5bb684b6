"""Which texts emorec classifies: the one check every entry point (Python, CLI, HTTP, jobs) runs.

A text must be a ``str`` with at least one non-whitespace character and no lone surrogate.
Lone surrogates (``"\\ud800"``: half of a UTF-16 pair, or a byte that was not UTF-8 read with
``surrogateescape``) are not Unicode characters: tokenizers reject them and UTF-8 cannot store
them. They are refused, never replaced, since replacing them would change the user's text
without a word. A text that cleaning leaves empty (only a link or an @mention) is still
classified: ``prepare`` keeps such rows for training and evaluation too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from emorec.errors import DataError

_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> int | None:
    """Index of the first lone surrogate in ``text``, or None when it has none."""
    if text.isascii():  # the common case skips the scan
        return None
    found = _SURROGATE.search(text)
    return found.start() if found else None


def text_problem(text: object) -> str | None:
    """Why ``text`` cannot be classified, as a phrase to follow its position; None if it can.

    >>> text_problem("   ")
    'holds only whitespace: there is nothing to classify'
    """
    if text is None:
        return "is missing (null): expected a string"
    if not isinstance(text, str):
        return f"must be a string; got {type(text).__name__}"
    if not text:
        return "is empty: there is nothing to classify"
    if text.isspace():
        return "holds only whitespace: there is nothing to classify"
    at = lone_surrogate(text)
    if at is not None:
        return (
            f"contains a lone surrogate (U+{ord(text[at]):04X} at character {at}), which is "
            "not a Unicode character: half of a UTF-16 pair, or bytes that are not UTF-8; fix "
            "the text's encoding"
        )
    return None


def check_text(text: object, where: str = "The text") -> str:
    """``text`` when it can be classified, else a DataError that starts with ``where``."""
    problem = text_problem(text)
    if problem is not None:
        raise DataError(f"{where} {problem}.")
    return text  # type: ignore[return-value]  (text_problem accepts only a str)


def as_text_batch(texts: object) -> tuple[list[str], bool]:
    """``texts`` (a str, or a list or other iterable of str) as a list, and whether it was one str.

    Raises DataError naming the first text that cannot be classified (``texts[i]``), or the
    expected types when ``texts`` is neither.
    """
    if isinstance(texts, str):
        return [check_text(texts)], True
    # bytes and dicts iterate (as ints, as keys) but are never a list of texts.
    if (
        texts is None
        or isinstance(texts, bytes | bytearray | Mapping)
        or not isinstance(texts, Iterable)
    ):
        raise DataError(f"texts must be a str or a list of str; got {type(texts).__name__}.")
    batch = list(texts)
    for i, text in enumerate(batch):
        check_text(text, f"texts[{i}]")
    return batch, False
