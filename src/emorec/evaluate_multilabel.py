"""The former name of :mod:`emorec.evaluation.multi_label`, kept so that imports keep working."""

from __future__ import annotations

from emorec.evaluation.multi_label import *  # noqa: F403
from emorec.evaluation.multi_label import __all__  # noqa: F401
