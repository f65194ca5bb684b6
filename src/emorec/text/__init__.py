"""Text cleaning: the stage that turns raw posts into model input (see :mod:`.cleaner`)."""

from __future__ import annotations

from emorec.text.cleaner import AlignedText, CleaningConfig, TextCleaner
from emorec.text.validation import as_text_batch, check_text, text_problem

__all__ = [
    "AlignedText",
    "CleaningConfig",
    "TextCleaner",
    "as_text_batch",
    "check_text",
    "text_problem",
]
