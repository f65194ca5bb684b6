"""What the estimators share: array checks that name the argument, constants, the plateau rule."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from emorec.errors import ConfigError, DataError
from emorec.task import MULTI_LABEL, SINGLE_LABEL

CALIBRATION_FILENAME = "calibration.json"
# The multi-label decision threshold when none were tuned. The only 0.5 in emorec.
DEFAULT_THRESHOLD = 0.5
_DEFAULT_THRESHOLD_GRID = (0.05, 0.95, 0.01)  # start, stop (inclusive), step
# Score gains below this are float noise; requiring more keeps coordinate ascent from cycling.
_TOL = 1e-12


def _logits_2d(x: Any, name: str = "logits") -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise DataError(
            f"{name} must have shape (n_samples, n_classes) with n_samples >= 1 and "
            f"n_classes >= 2; got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinite values; check the model outputs.")
    return arr


def _labels_1d(y: Any, n_samples: int, n_classes: int, name: str = "y") -> np.ndarray:
    return SINGLE_LABEL.validate_targets(y, n_samples, n_classes, name)


def _multi_hot(y: Any, shape: tuple[int, ...], name: str = "y") -> np.ndarray:
    return MULTI_LABEL.validate_targets(y, shape[0], shape[1], name)


def _probs_2d(x: Any, name: str = "probs") -> np.ndarray:
    arr = _logits_2d(x, name)
    if arr.min() < 0 or arr.max() > 1:
        raise DataError(
            f"{name} must be probabilities in [0, 1]; got values in [{arr.min()}, {arr.max()}]. "
            "Did you pass logits?"
        )
    return arr


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _param_error(owner: str, name: str, allowed: str, got: Any) -> ConfigError:
    return ConfigError(f"{owner}: {name} must be {allowed}; got {got!r}.")


def _check_n_bins(n_bins: Any) -> None:
    if not _is_int(n_bins) or n_bins < 1:
        raise _param_error("calibration error", "n_bins", "a positive integer", n_bins)


def _require(d: dict[str, Any], keys: Sequence[str], what: str) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{what}: expected a JSON object; got {type(d).__name__}.")
    missing = [k for k in keys if k not in d]
    if missing:
        raise ValueError(f"{what}: missing keys {missing}; expected {list(keys)}.")


def _first_plateau_middle(values: np.ndarray) -> int:
    """Index of the middle of the first run of maximal values.

    Ties are common (a threshold or offset anywhere in a gap between scores gives the same
    F1); the middle of the gap is the margin-maximising choice, and generalises better than
    its edge.
    """
    best = np.flatnonzero(values >= values.max() - _TOL)
    run_end = np.flatnonzero(np.diff(best) > 1)
    run = best[: run_end[0] + 1] if run_end.size else best
    return int(run[len(run) // 2])
