"""Text cleaning: turn raw posts and tweets into the text a model is trained and queried on.

Stages run in a fixed order, each one switched by a :class:`CleaningConfig` field::

    html -> urls -> mentions -> hashtags -> emoji -> emoticons -> lowercase -> slang
         -> repeated chars -> whitespace

Emoticons are read before lowercasing because case matters to them (``:D``, ``XD``). Slang runs
after lowercasing so its dictionary needs lowercase keys only. Repeated characters come after
slang, and an elongated word that repairs to a slang key (``plzzz`` -> ``plz``) is expanded there.

The same config must clean training and inference text, so it is saved with the model
(``config.model_dump()``) and read back with ``CleaningConfig.model_validate``.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import emoji

from emorec.config.sections import CleaningConfig

# Elongated words with more runs than this are capped without a dictionary search, which
# would otherwise try up to 3**runs spellings.
_MAX_RUNS_SEARCHED = 4


# ---------------------------------------------------------------------------------------------
# Resources: loaded once per process.


def _read_resource(name: str) -> Any:
    path = resources.files("emorec.text") / "resources" / name
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def slang_dictionary() -> Mapping[str, str]:
    """The slang map shipped in ``resources/slang.json``: lowercase form -> standard English."""
    return MappingProxyType(_read_resource("slang.json"))


@lru_cache(maxsize=1)
def emoticon_dictionary() -> Mapping[str, str]:
    """The emoticon map shipped in ``resources/emoticons.json``: emoticon -> word(s)."""
    return MappingProxyType(_read_resource("emoticons.json"))


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Lowercase words used to repair elongations: ``resources/words.json`` plus slang.

    Single-token slang keys count as known so that ``omgggg`` repairs to ``omg``; one-letter
    keys do not, or ``uuuu`` would become ``u`` and then ``you``.
    """
    words = set(_read_resource("words.json")["words"])
    for key, value in slang_dictionary().items():
        if key.isalpha() and len(key) > 1:
            words.add(key)
        words.update(part for part in value.split() if part.isalpha())
    return frozenset(words)


# ---------------------------------------------------------------------------------------------
# Patterns compiled once at import (they are small); the slang trie is built on first use.

# Attributes must hold '=' so that prose such as "a <b and c> d" is not taken for a tag.
_HTML_TAG = re.compile(
    r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9:-]*(?:\s+[^<>=]+=[^<>]*)?\s*/?>", re.DOTALL
)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# A colon right after the handle belongs to it ("RT @user: text").
_MENTION = re.compile(r"(?<![\w@])@\w+(?::(?=\s|$))?")
# '&' so that an unescaped entity such as '&#39;' keeps its '#'.
_HASHTAG = re.compile(r"(?<![\w&#])#(\w+)")

# Slang keys must stand alone: not glued to a word, and not part of an abbreviation, URL
# path or hyphenated word ('u.s.' must not become 'you.s.', nor 'rock'n'roll' lose its n).
_TOKEN_START = r"(?<!\w)(?<!\w['’./-])"
_TOKEN_END = r"(?!\w)(?!['’./-]\w)"


def _trie_regex(keys: Iterable[str], *, loose_spacing: bool = False) -> str:
    """One regex alternation for many literal keys, factored by common prefix.

    Python's ``re`` tries alternatives one by one; a trie makes a failed match at a position
    cost a few character tests instead of one test per key. With ``loose_spacing`` a space
    in a key matches any run of whitespace and an apostrophe also matches '’', so
    "don  t" and "don’t" are found too.
    """
    trie: dict[str, Any] = {}
    for key in keys:
        node = trie
        for char in key:
            node = node.setdefault(char, {})
        node[""] = {}  # end-of-key marker

    def char_regex(char: str) -> str:
        if loose_spacing and char == " ":
            return r"\s+"
        if loose_spacing and char == "'":
            return "['’]"
        return re.escape(char)

    def build(node: dict[str, Any]) -> str:
        branches = [char_regex(c) + build(node[c]) for c in sorted(node) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        # A key ending here is optional so the greedy match prefers the longer key, and
        # backtracks to this one when the longer key fails the token-end check.
        return f"(?:{body})?" if "" in node else body

    return build(trie)


@lru_cache(maxsize=2)
def _slang_regex(ignore_case: bool) -> re.Pattern[str]:
    flags = re.IGNORECASE if ignore_case else 0
    trie = _trie_regex(slang_dictionary(), loose_spacing=True)
    return re.compile(_TOKEN_START + trie + _TOKEN_END, flags)


@lru_cache(maxsize=1)
def _emoticon_regex() -> re.Pattern[str]:
    # The whole token must be the emoticon, optionally followed by sentence punctuation
    # ('great :).'). Its last character may repeat (':)))', ':DDD', '<333'): the lookbehind
    # captures that character so the backreference can consume the repeats.
    trie = _trie_regex(emoticon_dictionary())
    return re.compile(r"(?<!\S)" + trie + r"(?<=(.))\1*(?=[.,!?]*(?:\s|$))")


def _match_case(source: str, replacement: str) -> str:
    """Give ``replacement`` the case style of ``source``: lower, UPPER or Capitalised."""
    if source.islower() or not source[:1].isupper():
        return replacement
    if source.isupper() and sum(c.isalpha() for c in source) > 1:
        return replacement.upper()
    return replacement[:1].upper() + replacement[1:]


@lru_cache(maxsize=16)
def _letter_run_regex(cap: int) -> re.Pattern[str]:
    return re.compile(rf"([^\W\d_])\1{{{cap},}}")


@lru_cache(maxsize=65536)
def _repair_elongation(word: str, cap: int) -> str:
    """Shorten every letter run in ``word`` longer than ``cap``, preferring a known spelling.

    Each run is tried at length ``cap``, then 2, then 1, earlier runs kept longer first; the
    first candidate in :func:`known_words` wins, otherwise every run is cut to ``cap``.
    ``gooood`` -> ``good`` (tried before ``god``), ``soooo`` -> ``so``, ``hmmmm`` -> ``hmm``.
    A word that is itself known keeps its run (roman numeral ``iii``).
    """
    known = known_words()
    if word.lower() in known:
        return word
    runs = list(_letter_run_regex(cap).finditer(word))
    if not runs:
        return word
    gaps = [word[: runs[0].start()]]
    gaps += [word[a.end() : b.start()] for a, b in itertools.pairwise(runs)]
    gaps.append(word[runs[-1].end() :])
    letters = [run.group(1) for run in runs]

    def spell(lengths: tuple[int, ...]) -> str:
        parts = [gaps[0]]
        for letter, length, gap in zip(letters, lengths, gaps[1:], strict=True):
            parts += [letter * length, gap]
        return "".join(parts)

    capped = spell((cap,) * len(runs))
    if len(runs) > _MAX_RUNS_SEARCHED:
        return capped
    lengths = sorted({cap, min(cap, 2), 1}, reverse=True)
    for combo in itertools.product(lengths, repeat=len(runs)):
        candidate = spell(combo)
        if candidate.lower() in known:
            return candidate
    return capped


# ---------------------------------------------------------------------------------------------
# Stages. Each one rewrites a text (``__call__``, the fast path used for training and
# prediction) and can say which spans it rewrote (``align``), so that every character of a
# cleaned text can be traced back to the original substring it came from. Both paths are
# built from the same pattern and replacement, so they cannot disagree on the text.

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


# ---------------------------------------------------------------------------------------------


class TextCleaner:
    """Clean text with the stages switched on in a :class:`CleaningConfig`.

    The config is copied at construction: changing the object passed in afterwards has no
    effect. Output is deterministic and empty or whitespace-only input gives ``""``.

    With ``lowercase=False`` slang is matched case-insensitively and the expansion takes the
    token's case style: ``idk`` -> ``i do not know``, ``IDK`` -> ``I DO NOT KNOW``,
    ``Idk`` -> ``I do not know``.

    Example::

        >>> TextCleaner().clean("OMG I loooove this!!!! 😂 http://t.co/x @bob")
        'oh my god i love this!! face with tears of joy'
    """

    def __init__(self, config: CleaningConfig | None = None) -> None:
        if config is None:
            config = CleaningConfig()
        elif not isinstance(config, CleaningConfig):
            raise TypeError(
                f"TextCleaner expects a CleaningConfig or None, got {type(config).__name__}. "
                "Build one from a dict with CleaningConfig.model_validate(d)."
            )
        self._config = config.model_copy(deep=True)
        self._stages = self._build_stages()
        self._functions = [stage.fn for stage in self._stages]

    @property
    def config(self) -> CleaningConfig:
        """A copy of the config this cleaner was built with."""
        return self._config.model_copy(deep=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._config!r})"

    def __reduce__(self) -> tuple[type[TextCleaner], tuple[CleaningConfig]]:
        # Rebuild from the config when pickled (datasets.map with num_proc, dill hashing):
        # bound methods and closures in the stage list need not travel.
        return (type(self), (self._config,))

    def _build_stages(self) -> list[_Stage]:
        cfg = self._config
        stages: list[_Stage] = []
        if cfg.strip_html:
            stages += _MARKUP_STAGES
        if cfg.strip_urls:
            stages.append(_URL_STAGE)
        if cfg.strip_mentions:
            stages.append(_MENTION_STAGE)
        if cfg.strip_hashtag_symbol:
            stages.append(_HASHTAG_STAGE)
        if cfg.emoji_to_words:
            stages += self._emoji_stages()
        if cfg.emoticons_to_words:
            stages.append(self._emoticon_stage())
        if cfg.lowercase:
            stages.append(_LOWERCASE_STAGE)
        if cfg.normalize_slang:
            stages.append(self._slang_stage())
        if cfg.contract_repeated_chars:
            slang = slang_dictionary() if cfg.normalize_slang else {}
            stages.append(_RepeatStage(cfg.max_repeated_chars, slang, not cfg.lowercase))
        stages.append(_WHITESPACE_STAGE)
        return stages

    def _emoji_stages(self) -> list[_Stage]:
        if not self._config.contract_repeated_chars:
            return [_EMOJI_STAGE]
        # Cap runs of one emoji before naming them: eight 😂 would otherwise become forty
        # words and crowd real text out of the model's max_length.
        cap = self._config.max_repeated_chars
        emoji_run = re.compile(rf"([^\w\s])\1{{{cap},}}")
        return [_RegexStage(emoji_run, r"\1" * cap, _not_ascii), _EMOJI_STAGE]

    def _emoticon_stage(self) -> _Stage:
        table = emoticon_dictionary()

        def replace(match: re.Match[str]) -> str:
            token = match.group()
            while token not in table:  # ':)))' -> ':))' -> ':)'
                token = token[:-1]
            return " " + table[token] + " "

        return _RegexStage(_emoticon_regex(), replace)

    def _slang_stage(self) -> _Stage:
        table = slang_dictionary()
        case_blind = not self._config.lowercase

        def replace(match: re.Match[str]) -> str:
            token = match.group()
            expansion = table.get(token)
            if expansion is None:  # other case, curly apostrophe or extra whitespace
                expansion = table[" ".join(token.replace("’", "'").lower().split())]
            return _match_case(token, expansion) if case_blind else expansion

        return _RegexStage(_slang_regex(ignore_case=case_blind), replace)

    def clean(self, text: str) -> str:
        """Clean one text; raises ``TypeError`` when ``text`` is not a ``str``."""
        if not isinstance(text, str):
            raise TypeError(
                f"TextCleaner.clean expects a str, got {type(text).__name__} ({text!r:.50}). "
                "Convert the value with str() or drop missing rows (None/NaN) first."
            )
        for function in self._functions:
            text = function(text)
        return text

    def align(self, text: str) -> AlignedText:
        """Clean one text and trace each cleaned character back to the part of ``text`` it
        came from (for explanations that point at the user's own words).

        ``align(t).text == clean(t)``: the stages are the same, they also report the spans
        they rewrite. Slower than :meth:`clean`; meant for one text at a time.
        """
        if not isinstance(text, str):
            raise TypeError(
                f"TextCleaner.align expects a str, got {type(text).__name__} ({text!r:.50})."
            )
        current = text
        spans: _Spans = (list(range(len(text))), list(range(1, len(text) + 1)))
        for stage in self._stages:
            current, spans = stage.align(current, spans)
        return AlignedText(current, text, tuple(spans[0]), tuple(spans[1]))

    def clean_batch(self, texts: Iterable[str]) -> list[str]:
        """Clean many texts; the error for a non-``str`` item names its position."""
        if isinstance(texts, str):
            raise TypeError(
                "TextCleaner.clean_batch expects an iterable of str, got a single str; "
                "use clean() for one text or wrap it in a list."
            )
        functions = self._functions
        cleaned: list[str] = []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"TextCleaner.clean_batch expects str items, got {type(text).__name__} "
                    f"({text!r:.50}) at position {index}. Convert values with str() or drop "
                    "missing rows (None/NaN) first."
                )
            for function in functions:
                text = function(text)
            cleaned.append(text)
        return cleaned


def cleaning_throughput(
    texts: list[str], config: CleaningConfig | None = None, repeats: int = 3
) -> float:
    """Texts cleaned per second over ``texts``, best of ``repeats`` timed passes.

    The cleaner is built (resources loaded, regexes compiled) before timing starts. Results
    are cached per word inside the repeat stage, so passes after the first may be slightly
    faster; the best pass is the steady-state rate.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    if not texts:
        raise ValueError("texts is empty; pass at least one text to time.")
    cleaner = TextCleaner(config)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        cleaner.clean_batch(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / max(best, 1e-9)
