"""The former name of :mod:`emorec.evaluation.single_label`, kept so that imports keep working."""

from __future__ import annotations

from emorec.evaluation.single_label import *  # noqa: F403
from emorec.evaluation.single_label import __all__  # noqa: F401
