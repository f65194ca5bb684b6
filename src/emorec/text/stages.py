"""The cleaning stages that :class:`~emorec.text.cleaner.TextCleaner` chains.

Each one rewrites a text (``fn``, the fast path used for training and prediction) and can say
which spans it rewrote (``align``), so that every character of a cleaned text can be traced
back to the original substring it came from. Both paths are built from the same pattern and
replacement, so they cannot disagree on the text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import emoji

from emorec.text.alignment import _apply_edits, _Edit, _rewrite, _Spans
from emorec.text.lexicons import _match_case, _repair_elongation


class _Stage:
    """One cleaning step: ``fn`` rewrites a text (the fast path of :meth:`TextCleaner.clean`);
    ``align`` rewrites it the same way and carries the spans along. Most stages list the
    parts they rewrite in ``edits``; ``align`` applies those."""

    fn: Callable[[str], str]

    def edits(self, text: str) -> list[_Edit]:
        raise NotImplementedError

    def align(self, text: str, spans: _Spans) -> tuple[str, _Spans]:
        return _apply_edits(text, spans, self.edits(text))


class _RegexStage(_Stage):
    """``pattern.sub(repl, text)``. ``may_match``: a substring every match holds, or a cheap
    test, that skips most texts without running the regex."""

    def __init__(
        self,
        pattern: re.Pattern[str],
        repl: str | Callable[[re.Match[str]], str],
        may_match: str | Callable[[str], bool] | None = None,
    ) -> None:
        self._pattern = pattern
        self._repl = repl
        sub = pattern.sub
        if may_match is None:
            self._could_match: Callable[[str], bool] = lambda text: True
            self.fn = lambda text: sub(repl, text)
        elif isinstance(may_match, str):
            needle = may_match
            self._could_match = lambda text: needle in text
            self.fn = lambda text: sub(repl, text) if needle in text else text
        else:
            test = self._could_match = may_match
            self.fn = lambda text: sub(repl, text) if test(text) else text

    def edits(self, text: str) -> list[_Edit]:
        if not self._could_match(text):
            return []
        repl = self._repl
        # re.sub scans exactly as finditer does, and expands a template as Match.expand.
        if isinstance(repl, str):
            return [(m.start(), m.end(), m.expand(repl)) for m in self._pattern.finditer(text)]
        return [(m.start(), m.end(), repl(m)) for m in self._pattern.finditer(text)]


class _LowercaseStage(_Stage):
    fn = staticmethod(str.lower)

    def align(self, text: str, spans: _Spans) -> tuple[str, _Spans]:
        lowered = text.lower()
        if len(lowered) == len(text):  # lowercasing never shortens a character: one to one
            return lowered, spans
        # A few characters grow ('İ' -> 'i̇'): each piece comes from its character.
        starts, ends = spans
        widths = [len(char.lower()) for char in text]
        new_starts = [s for s, n in zip(starts, widths, strict=True) for _ in range(n)]
        new_ends = [e for e, n in zip(ends, widths, strict=True) for _ in range(n)]
        if len(new_starts) != len(lowered):  # context-dependent casing: trace to the whole
            first, last = (min(starts), max(ends)) if starts else (0, 0)
            new_starts, new_ends = [first] * len(lowered), [last] * len(lowered)
        return lowered, (new_starts, new_ends)


def _collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


class _WhitespaceStage(_Stage):
    """Collapse whitespace: words joined by one space, none at the ends."""

    fn = staticmethod(_collapse_whitespace)

    def align(self, text: str, spans: _Spans) -> tuple[str, _Spans]:
        starts, ends = spans
        new_starts: list[int] = []
        new_ends: list[int] = []
        cursor = 0
        for word in text.split():
            # Only whitespace lies between the cursor and the word, so find() lands on it.
            at = text.find(word, cursor)
            if new_starts:  # the joining space sits between the two words' sources
                gap = new_ends[-1]
                new_starts.append(gap)
                new_ends.append(max(gap, starts[at]))
            new_starts += starts[at : at + len(word)]
            new_ends += ends[at : at + len(word)]
            cursor = at + len(word)
        return _collapse_whitespace(text), (new_starts, new_ends)


# Patterns compiled once at import (they are small).

# Attributes must hold '=' so that prose such as "a <b and c> d" is not taken for a tag.
_HTML_TAG = re.compile(
    r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9:-]*(?:\s+[^<>=]+=[^<>]*)?\s*/?>", re.DOTALL
)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# A colon right after the handle belongs to it ("RT @user: text").
_MENTION = re.compile(r"(?<![\w@])@\w+(?::(?=\s|$))?")
# '&' so that an unescaped entity such as '&#39;' keeps its '#'.
_HASHTAG = re.compile(r"(?<![\w&#])#(\w+)")


def _unescape_entity(match: re.Match[str]) -> str:
    return html.unescape(match.group())


# html.unescape's own entity pattern (its module-private _charref): unescaping match by match
# gives html.unescape's text, and each entity's span.
_ENTITY = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


def _has_url_prefix(text: str) -> bool:
    # Cheap substring tests first: most texts hold no link, and the case-insensitive regex
    # cannot skip ahead on a literal prefix. "ww." also covers "Www.".
    return "://" in text or "ww." in text or "WW." in text


_MARKUP_STAGES = (
    _RegexStage(_HTML_TAG, " ", "<"),
    _RegexStage(_ENTITY, _unescape_entity, "&"),
)


_URL_STAGE = _RegexStage(_URL, " ", _has_url_prefix)
_MENTION_STAGE = _RegexStage(_MENTION, " ", "@")
_HASHTAG_STAGE = _RegexStage(_HASHTAG, r"\1", "#")


# Every emoji sequence lies inside a run of non-ASCII, non-space characters, apart from the
# ASCII base of a keycap (#️⃣, 1️⃣). emoji.replace_emoji walks its input in Python, so it is
# given these short runs (cached: the same few emoji recur) rather than the whole text.
_EMOJI_CANDIDATE = re.compile(r"[#*0-9]?[^\x00-\x7f\s]+")


def _emoji_name(chars: str, data: dict[str, Any]) -> str:
    return " " + data["en"].strip(":").replace("_", " ") + " "


@lru_cache(maxsize=8192)
def _name_emoji_run(run: str) -> str:
    return emoji.replace_emoji(run, replace=_emoji_name)


def _emoji_run_edits(run: str) -> list[_Edit]:
    """The emoji of ``run`` and their names, so 'é😍' traces 'é' and the name apart."""
    named: list[tuple[str, str]] = []

    def record(chars: str, data: dict[str, Any]) -> str:
        name = _emoji_name(chars, data)
        named.append((chars, name))
        return name

    emoji.replace_emoji(run, replace=record)
    edits: list[_Edit] = []
    cursor = 0
    for chars, name in named:
        at = run.find(chars, cursor)
        if at < 0:
            break
        edits.append((at, at + len(chars), name))
        cursor = at + len(chars)
    else:
        if _rewrite(run, edits) == _name_emoji_run(run):
            return edits
    # The library put together its output otherwise: the whole run is one rewrite.
    return [(0, len(run), _name_emoji_run(run))]


def _emoji_to_words(text: str) -> str:
    if text.isascii():  # C-speed test; most English text stops here
        return text
    return _EMOJI_CANDIDATE.sub(lambda match: _name_emoji_run(match.group()), text)


class _EmojiStage(_Stage):
    fn = staticmethod(_emoji_to_words)

    def edits(self, text: str) -> list[_Edit]:
        if text.isascii():
            return []
        edits: list[_Edit] = []
        for match in _EMOJI_CANDIDATE.finditer(text):
            run = match.group()
            if _name_emoji_run(run) != run:
                offset = match.start()
                edits += [(offset + a, offset + b, r) for a, b, r in _emoji_run_edits(run)]
        return edits


_EMOJI_STAGE = _EmojiStage()
_LOWERCASE_STAGE = _LowercaseStage()
_WHITESPACE_STAGE = _WhitespaceStage()


def _not_ascii(text: str) -> bool:
    return not text.isascii()


class _RepeatStage(_Stage):
    """Shorten character runs, repairing elongated words (``loooove`` -> ``love``)."""

    def __init__(self, cap: int, slang: Mapping[str, str], keep_case: bool) -> None:
        self._cap = cap
        # One scan for runs of any character: "(.)\1\1\1*" is several times cheaper in re
        # than a letter class with a {3,} repeat, and most texts have no run at all.
        self._any_run = re.compile("(.)" + r"\1" * cap + r"\1*", re.DOTALL)
        self._slang = slang
        self._keep_case = keep_case

    def _repair(self, word: str) -> str:
        word = _repair_elongation(word, self._cap)
        expansion = self._slang.get(word.lower())
        if expansion is None:
            return word
        return _match_case(word, expansion) if self._keep_case else expansion

    def edits(self, text: str) -> list[_Edit]:
        edits: list[_Edit] = []
        done = 0  # text[:done] is already rewritten
        for run in self._any_run.finditer(text):
            start, end = run.span()
            char = run.group(1)
            if start < done or char.isdigit() or char.isspace():
                # inside a word already repaired; a number (1000000); or whitespace,
                # which the last stage collapses anyway
                continue
            if char.isalpha():  # widen the run to its whole word
                while start > done and text[start - 1].isalpha():
                    start -= 1
                while end < len(text) and text[end].isalpha():
                    end += 1
                fixed = self._repair(text[start:end])
            else:
                fixed = char * self._cap
            edits.append((start, end, fixed))
            done = end
        return edits

    def fn(self, text: str) -> str:
        return _rewrite(text, self.edits(text))
