"""Per-label probability thresholds (multi-label) maximising validation F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from emorec.calibration._common import (
    _DEFAULT_THRESHOLD_GRID,
    DEFAULT_THRESHOLD,
    _first_plateau_middle,
    _is_int,
    _is_real,
    _multi_hot,
    _param_error,
    _probs_2d,
    _require,
)
from emorec.errors import ConfigError, DataError
from emorec.metrics import macro_f1


def _default_threshold_grid() -> np.ndarray:
    start, stop, step = _DEFAULT_THRESHOLD_GRID
    # Rounded so that 0.3 is 0.3, not 0.30000000000000004, in saved thresholds.
    return np.round(np.arange(start, stop + step / 2, step), 10)


class ThresholdTuner(BaseEstimator):
    """Per-label probability thresholds maximising F1 (multi-label).

    ``fit(probs (N, C), Y (N, C) multi-hot)`` on validation data. Label c is predicted when
    ``probs[:, c] >= thresholds_[c]``. Candidates are ``grid`` (default 0.05, 0.06, ...,
    0.95) restricted to ``>= min_threshold``. ``global_threshold_`` is the one threshold
    maximising macro-F1 over all labels; ``strategy="global"`` uses it for every label,
    ``"per_label"`` tunes each label's own F1. Either way a label with fewer than
    ``min_positives`` validation positives keeps :data:`DEFAULT_THRESHOLD` (its F1 curve is
    noise, so no threshold is supported by the data; ``fallback_`` marks these labels). Ties
    go to the middle of the best run of thresholds.
    """

    def __init__(
        self,
        grid: Sequence[float] | np.ndarray | None = None,
        min_threshold: float = 0.05,
        min_positives: int = 5,
        strategy: Literal["per_label", "global"] = "per_label",
    ) -> None:
        self.grid = grid
        self.min_threshold = min_threshold
        self.min_positives = min_positives
        self.strategy = strategy

    def _candidates(self) -> np.ndarray:
        name = type(self).__name__
        if self.strategy not in ("per_label", "global"):
            raise _param_error(name, "strategy", "one of 'per_label', 'global'", self.strategy)
        mt = self.min_threshold
        if not (_is_real(mt) and 0 <= mt < 1):
            raise _param_error(name, "min_threshold", "a float in [0, 1)", mt)
        mp = self.min_positives
        if not _is_int(mp) or mp < 0:
            raise _param_error(name, "min_positives", "an integer >= 0", mp)
        grid = _default_threshold_grid() if self.grid is None else np.asarray(self.grid, float)
        if grid.ndim != 1 or grid.size == 0 or not np.all((grid >= 0) & (grid <= 1)):
            raise _param_error(name, "grid", "a non-empty 1-D sequence of values in [0, 1]", grid)
        grid = np.unique(grid[grid >= mt])
        if grid.size == 0:
            raise ConfigError(
                f"{name}: no grid value is >= min_threshold={mt!r}; lower min_threshold or "
                "extend the grid."
            )
        return grid

    def fit(self, probs: Any, y: Any) -> Self:
        """Fit thresholds on validation ``probs`` (N, C) and multi-hot ``y`` (N, C)."""
        grid = self._candidates()
        p = _probs_2d(probs)
        labels = _multi_hot(y, p.shape)
        n, n_labels = p.shape
        n_true = labels.sum(0)
        # Counts of "p >= t" for every candidate t by binary search on sorted scores: (G, C).
        n_pred = np.empty((grid.size, n_labels))
        tp = np.empty((grid.size, n_labels))
        for c in range(n_labels):
            col = p[:, c]
            n_pred[:, c] = n - np.searchsorted(np.sort(col), grid, side="left")
            positives = np.sort(col[labels[:, c] == 1])
            tp[:, c] = positives.size - np.searchsorted(positives, grid, side="left")
        denom = n_true[None, :] + n_pred
        f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)  # (G, C)

        self.global_threshold_ = float(grid[_first_plateau_middle(f1.mean(axis=1))])
        thresholds = np.full(n_labels, self.global_threshold_)
        if self.strategy == "per_label":
            for c in range(n_labels):
                thresholds[c] = grid[_first_plateau_middle(f1[:, c])]
        fallback = n_true < self.min_positives
        thresholds[fallback] = DEFAULT_THRESHOLD
        self.thresholds_ = thresholds
        self.fallback_ = fallback
        self.score_ = macro_f1(labels, self.predict(p))
        return self

    @classmethod
    def fitted(cls, thresholds: Any) -> ThresholdTuner:
        """A tuner already fitted to ``thresholds``: (C,), or one for every label."""
        tuner = cls()
        tuner.thresholds_ = np.asarray(thresholds, dtype=np.float64)
        return tuner

    def predict(self, probs: Any, ensure_one: bool = False) -> np.ndarray:
        """0/1 predictions (N, C); ``ensure_one`` turns on the top label of empty rows."""
        check_is_fitted(self, "thresholds_")
        return _threshold(_probs_2d(probs), self.thresholds_, ensure_one)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters and fitted thresholds."""
        check_is_fitted(self, "thresholds_")
        params = self.get_params()
        if params["grid"] is not None:
            params["grid"] = np.asarray(params["grid"], float).tolist()
        return {
            **params,
            "thresholds": self.thresholds_.tolist(),
            "global_threshold": self.global_threshold_,
            "fallback": self.fallback_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ThresholdTuner:
        """Rebuild a fitted tuner from :meth:`to_dict` output."""
        params = ("grid", "min_threshold", "min_positives", "strategy")
        _require(d, (*params, "thresholds", "global_threshold", "fallback"), cls.__name__)
        tuner = cls(**{k: d[k] for k in params})
        tuner._candidates()
        tuner.thresholds_ = np.asarray(d["thresholds"], dtype=np.float64)
        tuner.global_threshold_ = float(d["global_threshold"])
        tuner.fallback_ = np.asarray(d["fallback"], dtype=bool)
        return tuner


def _threshold(probs: np.ndarray, thresholds: np.ndarray | float, ensure_one: bool) -> np.ndarray:
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim == 1 and thr.size != probs.shape[1]:
        raise DataError(
            f"probabilities have {probs.shape[1]} labels but there are {thr.size} thresholds."
        )
    out = (probs >= thr).astype(np.int64)
    if ensure_one:
        empty = np.flatnonzero(out.sum(axis=1) == 0)
        out[empty, probs[empty].argmax(axis=1)] = 1
    return out
