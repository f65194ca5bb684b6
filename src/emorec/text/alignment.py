"""Tracing cleaned text back to its source: the spans each cleaning stage carries along.

A stage rewrites parts of a text (*edits*); :func:`_apply_edits` applies them and keeps, for
each character of the result, the span of the original text it came from. :class:`AlignedText`
is what :meth:`~emorec.text.cleaner.TextCleaner.align` returns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# For each character of a text: where in the original text it came from, [start, end).
_Spans = tuple[list[int], list[int]]
# A rewrite of text[start:end] into a replacement string.
_Edit = tuple[int, int, str]


def _apply_edits(text: str, spans: _Spans, edits: Iterable[_Edit]) -> tuple[str, _Spans]:
    """Rewrite ``text`` by ``edits`` (in order, not overlapping) and carry the spans along.

    Every character of a replacement comes from the whole rewritten part: ':(' -> 'sad' gives
    's', 'a' and 'd' the span of ':('. Untouched characters keep their own span.
    """
    starts, ends = spans
    pieces: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    done = 0  # text[:done] is already in pieces
    for start, end, replacement in edits:
        pieces.append(text[done:start])
        new_starts += starts[done:start]
        new_ends += ends[done:start]
        if start < end:
            first, last = min(starts[start:end]), max(ends[start:end])
        else:  # an insertion: it comes from no character, say from the point it sits at
            first = last = starts[start] if start < len(starts) else (ends[-1] if ends else 0)
        pieces.append(replacement)
        new_starts += [first] * len(replacement)
        new_ends += [last] * len(replacement)
        done = end
    if not pieces:
        return text, spans
    pieces.append(text[done:])
    new_starts += starts[done:]
    new_ends += ends[done:]
    return "".join(pieces), (new_starts, new_ends)


def _rewrite(text: str, edits: Iterable[_Edit]) -> str:
    """``text`` with ``edits`` applied, without spans."""
    pieces: list[str] = []
    done = 0
    for start, end, replacement in edits:
        pieces += [text[done:start], replacement]
        done = end
    return "".join(pieces) + text[done:] if pieces else text


@dataclass(frozen=True)
class AlignedText:
    """A cleaned ``text`` and, for each of its characters, the span of ``source`` it came from.

    Offsets are Python ``str`` indices (Unicode code points), end exclusive: character ``i``
    of ``text`` was made from ``source[starts[i]:ends[i]]``. A character that cleaning wrote
    (an emoji's name, an expanded slang word, a repaired elongation) comes from the whole
    source part it replaced: in ``clean(':(')`` = ``'sad'`` every letter has the span of
    ``':('``.
    """

    text: str
    source: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of ``source`` that ``text[start:end]`` was made from."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(
                f"source_span needs 0 <= start < end <= {len(self.text)} (the cleaned text's "
                f"length); got start={start}, end={end}."
            )
        return min(self.starts[start:end]), max(self.ends[start:end])

    def word_spans(self) -> list[tuple[int, int]]:
        """For each whitespace-separated word of ``text``, the span of ``source`` it came from."""
        return [self.source_span(*m.span()) for m in re.finditer(r"\S+", self.text)]
