"""Text cleaning: the stage that turns raw posts into model input (see :mod:`.cleaner`)."""

from __future__ import annotations

from emorec.text.cleaner import AlignedText, CleaningConfig, TextCleaner

__all__ = ["AlignedText", "CleaningConfig", "TextCleaner"]
