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
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import emoji
from pydantic import Field

from emorec._strict import StrictModel

# Elongated words with more runs than this are capped without a dictionary search, which
# would otherwise try up to 3**runs spellings.
_MAX_RUNS_SEARCHED = 4


class CleaningConfig(StrictModel):
    """Switches for each cleaning stage; the defaults suit English tweets and chat text."""

    lowercase: bool = Field(
        True,
        description="Lowercase the text. Runs after emoticons, so ':D' and 'XD' are still read.",
    )
    strip_urls: bool = Field(
        True, description="Remove links starting with http://, https:// or www."
    )
    strip_html: bool = Field(
        True,
        description="Remove HTML tags such as <br/> and unescape entities (&amp; -> &).",
    )
    strip_mentions: bool = Field(True, description="Remove @user mentions.")
    strip_hashtag_symbol: bool = Field(
        True, description="Drop the '#' of hashtags and keep the word (#happy -> happy)."
    )
    emoji_to_words: bool = Field(
        True,
        description="Replace emoji by their English names (😂 -> 'face with tears of joy').",
    )
    emoticons_to_words: bool = Field(
        True,
        description="Replace ASCII emoticons standing alone as a token by a word "
        "(':)' -> 'smile', ':'(' -> 'crying', '<3' -> 'love').",
    )
    normalize_slang: bool = Field(
        True,
        description="Expand chat slang, abbreviations and contractions on whole tokens "
        "(idk -> 'i do not know', \"don't\" and 'don t' -> 'do not').",
    )
    contract_repeated_chars: bool = Field(
        True,
        description="Shorten character runs longer than max_repeated_chars, using a word list "
        "to pick the intended spelling (loooove -> love, soooo -> so, !!!!! -> !!).",
    )
    max_repeated_chars: int = Field(
        2, ge=1, description="Longest run of one character kept by contract_repeated_chars."
    )


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


def _strip_html(text: str) -> str:
    if "<" in text:
        text = _HTML_TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return text


def _strip_urls(text: str) -> str:
    # Cheap substring tests first: most texts hold no link, and the case-insensitive regex
    # cannot skip ahead on a literal prefix. "ww." also covers "Www.".
    if "://" not in text and "ww." not in text and "WW." not in text:
        return text
    return _URL.sub(" ", text)


def _strip_mentions(text: str) -> str:
    return _MENTION.sub(" ", text) if "@" in text else text


def _strip_hashtag_symbol(text: str) -> str:
    return _HASHTAG.sub(r"\1", text) if "#" in text else text


# Every emoji sequence lies inside a run of non-ASCII, non-space characters, apart from the
# ASCII base of a keycap (#️⃣, 1️⃣). emoji.replace_emoji walks its input in Python, so it is
# given these short runs (cached: the same few emoji recur) rather than the whole text.
_EMOJI_CANDIDATE = re.compile(r"[#*0-9]?[^\x00-\x7f\s]+")


def _emoji_name(chars: str, data: dict[str, Any]) -> str:
    return " " + data["en"].strip(":").replace("_", " ") + " "


@lru_cache(maxsize=8192)
def _name_emoji_run(run: str) -> str:
    return emoji.replace_emoji(run, replace=_emoji_name)


def _emoji_to_words(text: str) -> str:
    if text.isascii():  # C-speed test; most English text stops here
        return text
    return _EMOJI_CANDIDATE.sub(lambda match: _name_emoji_run(match.group()), text)


def _collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


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

    def _build_stages(self) -> list[Callable[[str], str]]:
        cfg = self._config
        stages: list[Callable[[str], str]] = []
        if cfg.strip_html:
            stages.append(_strip_html)
        if cfg.strip_urls:
            stages.append(_strip_urls)
        if cfg.strip_mentions:
            stages.append(_strip_mentions)
        if cfg.strip_hashtag_symbol:
            stages.append(_strip_hashtag_symbol)
        if cfg.emoji_to_words:
            stages.append(self._emoji_stage())
        if cfg.emoticons_to_words:
            stages.append(self._emoticon_stage())
        if cfg.lowercase:
            stages.append(str.lower)
        if cfg.normalize_slang:
            stages.append(self._slang_stage())
        if cfg.contract_repeated_chars:
            stages.append(self._repeat_stage())
        stages.append(_collapse_whitespace)
        return stages

    def _emoji_stage(self) -> Callable[[str], str]:
        if not self._config.contract_repeated_chars:
            return _emoji_to_words
        # Cap runs of one emoji before naming them: eight 😂 would otherwise become forty
        # words and crowd real text out of the model's max_length.
        cap = self._config.max_repeated_chars
        emoji_run = re.compile(rf"([^\w\s])\1{{{cap},}}")
        template = r"\1" * cap

        def capped_emoji_to_words(text: str) -> str:
            return text if text.isascii() else _emoji_to_words(emoji_run.sub(template, text))

        return capped_emoji_to_words

    def _emoticon_stage(self) -> Callable[[str], str]:
        table = emoticon_dictionary()
        pattern = _emoticon_regex()

        def replace(match: re.Match[str]) -> str:
            token = match.group()
            while token not in table:  # ':)))' -> ':))' -> ':)'
                token = token[:-1]
            return " " + table[token] + " "

        return lambda text: pattern.sub(replace, text)

    def _slang_stage(self) -> Callable[[str], str]:
        table = slang_dictionary()
        case_blind = not self._config.lowercase
        pattern = _slang_regex(ignore_case=case_blind)

        def replace(match: re.Match[str]) -> str:
            token = match.group()
            expansion = table.get(token)
            if expansion is None:  # other case, curly apostrophe or extra whitespace
                expansion = table[" ".join(token.replace("’", "'").lower().split())]
            return _match_case(token, expansion) if case_blind else expansion

        return lambda text: pattern.sub(replace, text)

    def _repeat_stage(self) -> Callable[[str], str]:
        cap = self._config.max_repeated_chars
        # One scan for runs of any character: "(.)\1\1\1*" is several times cheaper in re
        # than a letter class with a {3,} repeat, and most texts have no run at all.
        any_run = re.compile("(.)" + r"\1" * cap + r"\1*", re.DOTALL)
        slang = slang_dictionary() if self._config.normalize_slang else {}
        keep_case = not self._config.lowercase

        def repair(word: str) -> str:
            word = _repair_elongation(word, cap)
            expansion = slang.get(word.lower())
            if expansion is None:
                return word
            return _match_case(word, expansion) if keep_case else expansion

        def contract(text: str) -> str:
            pieces: list[str] = []
            done = 0  # text[:done] is already in pieces
            for run in any_run.finditer(text):
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
                    fixed = repair(text[start:end])
                else:
                    fixed = char * cap
                pieces += [text[done:start], fixed]
                done = end
            return "".join(pieces) + text[done:] if pieces else text

        return contract

    def clean(self, text: str) -> str:
        """Clean one text; raises ``TypeError`` when ``text`` is not a ``str``."""
        if not isinstance(text, str):
            raise TypeError(
                f"TextCleaner.clean expects a str, got {type(text).__name__} ({text!r:.50}). "
                "Convert the value with str() or drop missing rows (None/NaN) first."
            )
        for stage in self._stages:
            text = stage(text)
        return text

    def clean_batch(self, texts: Iterable[str]) -> list[str]:
        """Clean many texts; the error for a non-``str`` item names its position."""
        if isinstance(texts, str):
            raise TypeError(
                "TextCleaner.clean_batch expects an iterable of str, got a single str; "
                "use clean() for one text or wrap it in a list."
            )
        stages = self._stages
        cleaned: list[str] = []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"TextCleaner.clean_batch expects str items, got {type(text).__name__} "
                    f"({text!r:.50}) at position {index}. Convert values with str() or drop "
                    "missing rows (None/NaN) first."
                )
            for stage in stages:
                text = stage(text)
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
