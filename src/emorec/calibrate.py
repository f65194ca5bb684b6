"""The former name of :mod:`emorec.calibration`, kept so that existing imports keep working."""

from __future__ import annotations

from emorec.calibration import *  # noqa: F403
from emorec.calibration import __all__  # noqa: F401
