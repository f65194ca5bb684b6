"""Markdown pieces of the model card: numbers as the card prints them, and tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def format_number(value: Any, digits: int = 4) -> str:
    """A metric as rendered in the card: ``digits`` decimals, ``n/a`` for missing/NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def format_count(n: int | None) -> str:
    """A parameter count: ``22.7M`` from 100,000 on, digits with commas below."""
    if n is None:
        return "unknown"
    return f"{n / 1e6:.1f}M" if n >= 100_000 else f"{n:,}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (cells are used as given)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_duration(seconds: float | None) -> str:
    """``1 h 02 min`` or ``3 min 05 s``; ``not recorded`` for None."""
    if seconds is None:
        return "not recorded"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
