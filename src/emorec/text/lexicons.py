"""The lexicons cleaning reads (slang, emoticons, known words) and what is built from them.

The JSON files under ``resources/`` are loaded once per process; the regexes that find their
keys in a text are built on first use. Elongated words (``loooove``) are repaired against
:func:`known_words`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

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
# Lexicon regexes: the slang trie is built on first use.

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


# ---------------------------------------------------------------------------------------------
# Spelling: the case of an expansion, the repair of an elongated word.


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
