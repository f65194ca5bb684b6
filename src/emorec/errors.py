"""Exceptions raised by emorec.

Every error emorec raises on bad input derives from :class:`EmorecError`, so the CLI can show
its message (which says what was expected, what arrived and how to fix it) without a traceback.
"""

from __future__ import annotations


class EmorecError(Exception):
    """Base class for errors caused by user input (config, data, model directory)."""


class ConfigError(EmorecError, ValueError):
    """A configuration file or override is invalid."""


class DataError(EmorecError, ValueError):
    """A data file is missing or malformed, or its labels do not fit the label space."""


class ModelDirError(EmorecError, OSError):
    """A model directory is missing files or holds files emorec cannot read."""


class MissingDependencyError(EmorecError, ImportError):
    """An optional dependency (ONNX Runtime, ...) is needed but not installed."""
