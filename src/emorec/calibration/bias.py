"""Per-class decision offsets (single-label) maximising validation macro-F1 of the argmax."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from emorec.calibration._common import (
    _TOL,
    _first_plateau_middle,
    _is_int,
    _is_real,
    _labels_1d,
    _logits_2d,
    _param_error,
    _require,
)
from emorec.errors import ConfigError, DataError
from emorec.metrics import macro_f1, macro_f1_from_counts


class BiasTuner(BaseEstimator):
    """Per-class additive decision offsets maximising macro-F1 (single-label).

    ``predict(scores) = argmax(scores + biases_)`` for scores (N, C) that are log-probabilities
    or logits (argmax is the same for both, as they differ by a per-row constant). Fitted by
    coordinate ascent: each class's offset in turn is set to the best of ``grid_steps``
    values in ``[grid_min, grid_max]`` (others fixed) and passes repeat until none changes
    or ``max_passes``. A change needs a strict macro-F1 gain; among tied offsets the middle
    of the best run is taken. All offsets are free during the search and mean-centred at
    the end (adding a constant to all changes no decision). If the final macro-F1 does not
    beat the plain argmax by more than ``min_improvement``, the offsets are reset to zero
    -- the guard against fitting noise on a small validation set.
    """

    def __init__(
        self,
        grid_min: float = -3.0,
        grid_max: float = 3.0,
        grid_steps: int = 61,
        max_passes: int = 10,
        min_improvement: float = 0.0,
    ) -> None:
        self.grid_min = grid_min
        self.grid_max = grid_max
        self.grid_steps = grid_steps
        self.max_passes = max_passes
        self.min_improvement = min_improvement

    def _validate_params(self) -> None:
        name = type(self).__name__
        for param in ("grid_min", "grid_max", "min_improvement"):
            value = getattr(self, param)
            if not _is_real(value):
                raise _param_error(name, param, "a finite float", value)
        if self.grid_min >= self.grid_max:
            raise ConfigError(
                f"{name}: grid_min must be < grid_max; got grid_min={self.grid_min!r}, "
                f"grid_max={self.grid_max!r}."
            )
        for param, low in (("grid_steps", 2), ("max_passes", 1)):
            value = getattr(self, param)
            if not _is_int(value) or value < low:
                raise _param_error(name, param, f"an integer >= {low}", value)
        if self.min_improvement < 0:
            raise _param_error(name, "min_improvement", "a float >= 0", self.min_improvement)

    def fit(self, scores: Any, y: Any) -> Self:
        """Fit offsets on validation ``scores`` (N, C) and labels ``y`` (N,); returns self."""
        self._validate_params()
        s = _logits_2d(scores, "scores")
        labels = _labels_1d(y, *s.shape)
        n_classes = s.shape[1]
        grid = np.linspace(self.grid_min, self.grid_max, self.grid_steps)

        biases = np.zeros(n_classes)
        self.score_before_ = macro_f1(labels, s.argmax(axis=1), n_classes)
        current = self.score_before_
        n_passes, changed = 0, True
        while changed and n_passes < self.max_passes:
            n_passes, changed = n_passes + 1, False
            for k in range(n_classes):
                f1 = self._candidate_f1(s, biases, k, grid, labels)
                best = _first_plateau_middle(f1)
                if f1[best] > current + _TOL:
                    biases[k], current, changed = grid[best], float(f1[best]), True

        biases -= biases.mean()
        score_after = macro_f1(labels, (s + biases).argmax(axis=1), n_classes)
        if not score_after > self.score_before_ + self.min_improvement:
            biases, score_after = np.zeros(n_classes), self.score_before_
        self.biases_ = biases
        self.score_after_ = score_after
        self.n_passes_ = n_passes
        return self

    @staticmethod
    def _candidate_f1(
        s: np.ndarray, biases: np.ndarray, k: int, grid: np.ndarray, labels: np.ndarray
    ) -> np.ndarray:
        """Macro-F1 (G,) of argmax(s + b) for every candidate b_k in ascending grid (G,)."""
        n_grid, n_classes = grid.size, s.shape[1]
        others = s + biases  # (N, C), the same float sums predict() computes
        others[:, k] = -np.inf
        other_best, other_idx = others.max(axis=1), others.argmax(axis=1)  # (N,)
        val = s[:, k][None, :] + grid[:, None]  # (G, N)
        # np.argmax breaks ties towards the lower index; mirror that exactly.
        wins = (val > other_best) | ((val == other_best) & (k < other_idx))  # (G, N)
        # wins is monotone along the ascending grid, so example i is predicted k from its
        # first winning candidate on; counting by that index avoids a (G, N) x (N, C) product.
        first = np.where(wins.any(axis=0), wins.argmax(axis=0), n_grid)  # (N,), G = never

        def cumulative(weights: np.ndarray | None, by_class: bool) -> np.ndarray:
            if not by_class:
                return np.bincount(first, weights, minlength=n_grid + 1)[:n_grid].cumsum()
            flat = first * n_classes + other_idx
            hist = np.bincount(flat, weights, minlength=(n_grid + 1) * n_classes)
            return hist.reshape(n_grid + 1, n_classes)[:n_grid].cumsum(axis=0)  # (G, C)

        runner_up_right = (labels == other_idx).astype(np.float64)
        # Examples whose runner-up is j are predicted j until class k overtakes them.
        n_pred = np.bincount(other_idx, minlength=n_classes) - cumulative(None, True)
        tp = np.bincount(other_idx, runner_up_right, n_classes) - cumulative(runner_up_right, True)
        n_pred[:, k] = cumulative(None, False)
        tp[:, k] = cumulative((labels == k).astype(np.float64), False)
        n_true = np.bincount(labels, minlength=n_classes)
        return macro_f1_from_counts(tp, n_true[None, :], n_pred)

    @classmethod
    def fitted(cls, biases: Any) -> BiasTuner:
        """A tuner already fitted to ``biases`` (C,) (a stored calibration's offsets)."""
        tuner = cls()
        tuner.biases_ = np.asarray(biases, dtype=np.float64)
        return tuner

    def predict(self, scores: Any) -> np.ndarray:
        """Class indices (N,) = argmax(scores + biases_)."""
        check_is_fitted(self, "biases_")
        s = _logits_2d(scores, "scores")
        if s.shape[1] != self.biases_.size:
            raise DataError(
                f"scores have {s.shape[1]} classes but the tuner was fitted on {self.biases_.size}."
            )
        return (s + self.biases_).argmax(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, offsets and fit scores."""
        check_is_fitted(self, "biases_")
        return {
            **self.get_params(),
            "biases": self.biases_.tolist(),
            "score_before": self.score_before_,
            "score_after": self.score_after_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BiasTuner:
        """Rebuild a fitted tuner from :meth:`to_dict` output."""
        params = ("grid_min", "grid_max", "grid_steps", "max_passes", "min_improvement")
        _require(d, (*params, "biases"), cls.__name__)
        tuner = cls(**{k: d[k] for k in params})
        tuner._validate_params()
        tuner.biases_ = np.asarray(d["biases"], dtype=np.float64)
        tuner.score_before_ = d.get("score_before")
        tuner.score_after_ = d.get("score_after")
        return tuner
