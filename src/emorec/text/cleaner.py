"""Text cleaning: turn raw posts and tweets into the text a model is trained and queried on.

Stages run in a fixed order, each one switched by a :class:`CleaningConfig` field::

    html -> urls -> mentions -> hashtags -> emoji -> emoticons -> lowercase -> slang
         -> repeated chars -> whitespace

Emoticons are read before lowercasing because case matters to them (``:D``, ``XD``). Slang runs
after lowercasing so its dictionary needs lowercase keys only. Repeated characters come after
slang, and an elongated word that repairs to a slang key (``plzzz`` -> ``plz``) is expanded there.

The same config must clean training and inference text, so it is saved with the model
(``config.model_dump()``) and read back with ``CleaningConfig.model_validate``.

The stages live in :mod:`emorec.text.stages`, the lexicons they read in
:mod:`emorec.text.lexicons` and the span tracing behind :meth:`TextCleaner.align` in
:mod:`emorec.text.alignment`; the public names of those modules are importable from here too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from emorec.config.sections import CleaningConfig
from emorec.text.alignment import AlignedText, _Spans
from emorec.text.lexicons import (
    _emoticon_regex,
    _match_case,
    _slang_regex,
    emoticon_dictionary,
    slang_dictionary,
)
from emorec.text.lexicons import known_words as known_words
from emorec.text.stages import (
    _EMOJI_STAGE,
    _HASHTAG_STAGE,
    _LOWERCASE_STAGE,
    _MARKUP_STAGES,
    _MENTION_STAGE,
    _URL_STAGE,
    _WHITESPACE_STAGE,
    _not_ascii,
    _RegexStage,
    _RepeatStage,
    _Stage,
)


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
