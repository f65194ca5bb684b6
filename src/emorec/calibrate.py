"""Post-hoc calibration: temperature scaling, decision biases and thresholds, fitted on validation.

The estimators follow scikit-learn's contract: parameters go to ``__init__`` and are validated
in ``fit``; ``fit`` returns ``self``; learned state ends in ``_``; using an unfitted estimator
raises :class:`sklearn.exceptions.NotFittedError`. Each one round-trips through
``to_dict`` / ``from_dict``.

- :class:`TemperatureScaler`: one temperature T minimising validation NLL of
  ``softmax(logits / T)`` (single-label) or ``sigmoid(logits / T)`` (multi-label).
- :class:`BiasTuner` (single-label): per-class additive offsets on log-probabilities that
  maximise macro-F1 of the argmax decision.
- :class:`ThresholdTuner` (multi-label): per-label probability thresholds maximising F1.
- :class:`Calibration`: the fitted bundle saved in a model directory, and
  :func:`fit_calibration`, which fits it from validation logits and a :class:`CalibrationConfig`.
  It adopts tuned offsets or thresholds only where the validation data supports them (enough
  examples per class, optionally a cross-validated gain) and records why in ``reason``.

Everything here works on numpy arrays: inference can apply a :class:`Calibration` without torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit as sigmoid
from scipy.special import log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from emorec._io import atomic_write_json
from emorec.config.sections import CalibrationConfig, Decision
from emorec.errors import ConfigError, DataError, ModelDirError
from emorec.metrics import macro_f1, macro_f1_from_counts

__all__ = [
    "CALIBRATION_FILENAME",
    "DEFAULT_THRESHOLD",
    "BiasTuner",
    "Calibration",
    "CalibrationConfig",
    "TemperatureScaler",
    "ThresholdTuner",
    "expected_calibration_error",
    "fit_calibration",
    "macro_f1",
    "reliability_curve",
]

CALIBRATION_FILENAME = "calibration.json"
# The multi-label decision threshold when none were tuned. The only 0.5 in emorec.
DEFAULT_THRESHOLD = 0.5
_DEFAULT_THRESHOLD_GRID = (0.05, 0.95, 0.01)  # start, stop (inclusive), step
# Score gains below this are float noise; requiring more keeps coordinate ascent from cycling.
_TOL = 1e-12


# --------------------------------------------------------------------------- validation


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
    arr = np.asarray(y)
    if arr.shape != (n_samples,):
        raise DataError(
            f"{name} must be class indices of shape ({n_samples},) for single-label data; "
            f"got shape {arr.shape}. (Multi-hot (N, C) labels need multi_label=True.)"
        )
    if not np.issubdtype(arr.dtype, np.number) or (
        not np.issubdtype(arr.dtype, np.integer) and not np.all(np.mod(arr, 1) == 0)
    ):
        raise DataError(f"{name} must hold integer class indices; got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise DataError(
            f"{name} must hold class indices in [0, {n_classes}); got values in "
            f"[{arr.min()}, {arr.max()}]."
        )
    return arr


def _multi_hot(y: Any, shape: tuple[int, ...], name: str = "y") -> np.ndarray:
    arr = np.asarray(y)
    if arr.shape != shape:
        raise DataError(
            f"{name} must be a multi-hot matrix of shape {shape} for multi-label data; "
            f"got shape {arr.shape}."
        )
    if not np.all((arr == 0) | (arr == 1)):
        raise DataError(f"{name} must hold only 0 and 1 (multi-hot); got other values.")
    return arr.astype(np.int64)


def _targets(y: Any, scores: np.ndarray, multi_label: bool) -> np.ndarray:
    if multi_label:
        return _multi_hot(y, scores.shape)
    return _labels_1d(y, scores.shape[0], scores.shape[1])


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


# --------------------------------------------------------------------------- metrics


def _confidence_and_hits(probs: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _probs_2d(probs)
    if np.asarray(y).ndim == 2:
        # Multi-label: every (example, label) is a binary forecast of "label is on".
        return p.ravel(), _multi_hot(y, p.shape).ravel().astype(np.float64)
    labels = _labels_1d(y, p.shape[0], p.shape[1])
    return p.max(axis=1), (p.argmax(axis=1) == labels).astype(np.float64)


def _binned(conf: np.ndarray, hits: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    # Equal-width bins [k/n, (k+1)/n); confidence 1.0 goes into the last bin.
    idx = np.minimum((conf * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(idx, weights=hits, minlength=n_bins)
    return counts, conf_sum, hit_sum


def expected_calibration_error(probs: Any, y: Any, n_bins: int = 15) -> float:
    """Expected calibration error with ``n_bins`` equal-width confidence bins.

    Single-label: ``probs`` (N, C), ``y`` (N,) -- top-label ECE (confidence = max prob,
    hit = argmax is right). Multi-label: ``y`` (N, C) multi-hot -- each of the N * C
    label probabilities is a forecast of that label being on. Returns
    ``sum_b n_b / N * |accuracy_b - confidence_b|``.
    """
    _check_n_bins(n_bins)
    conf, hits = _confidence_and_hits(probs, y)
    _, conf_sum, hit_sum = _binned(conf, hits, n_bins)
    return float(np.abs(hit_sum - conf_sum).sum() / conf.size)


def reliability_curve(probs: Any, y: Any, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Per-bin data for a reliability diagram (same binning as :func:`expected_calibration_error`).

    Returns arrays of shape (n_bins,): ``bin_centers``, ``accuracy`` (hit rate),
    ``confidence`` (mean confidence) and ``counts``; empty bins have NaN accuracy/confidence.
    """
    _check_n_bins(n_bins)
    conf, hits = _confidence_and_hits(probs, y)
    counts, conf_sum, hit_sum = _binned(conf, hits, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(counts > 0, hit_sum / counts, np.nan)
        confidence = np.where(counts > 0, conf_sum / counts, np.nan)
    return {
        "bin_centers": (np.arange(n_bins) + 0.5) / n_bins,
        "accuracy": accuracy,
        "confidence": confidence,
        "counts": counts,
    }


# --------------------------------------------------------------------------- temperature


def _scaled_log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    return log_softmax(logits / temperature, axis=1)


def _probabilities(logits: np.ndarray, temperature: float, multi_label: bool) -> np.ndarray:
    scaled = logits / temperature
    return sigmoid(scaled) if multi_label else softmax(scaled, axis=1)


class TemperatureScaler(BaseEstimator):
    """Temperature scaling (Guo et al. 2017): one scalar T, fitted by minimising NLL.

    ``fit(logits (N, C), y)`` with ``y`` (N,) class indices (softmax NLL) or, with
    ``multi_label=True``, (N, C) multi-hot (mean sigmoid NLL over all N * C entries).
    T is searched in ``[min_temperature, max_temperature]`` by bounded Brent on log T
    (NLL is unimodal in log T). Fit on validation logits. ``T > 1`` softens overconfident
    predictions; the argmax never changes.
    """

    def __init__(
        self,
        multi_label: bool = False,
        min_temperature: float = 0.05,
        max_temperature: float = 20.0,
    ) -> None:
        self.multi_label = multi_label
        self.min_temperature = min_temperature
        self.max_temperature = max_temperature

    def _validate_params(self) -> None:
        name = type(self).__name__
        if not isinstance(self.multi_label, bool | np.bool_):
            raise _param_error(name, "multi_label", "True or False", self.multi_label)
        lo, hi = self.min_temperature, self.max_temperature
        if not (_is_real(lo) and lo > 0):
            raise _param_error(name, "min_temperature", "a positive float", lo)
        if not (_is_real(hi) and hi > lo):
            raise _param_error(name, "max_temperature", f"a float > min_temperature={lo}", hi)

    def _nll(self, logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
        scaled = logits / temperature
        if self.multi_label:
            return float(-(y * log_expit(scaled) + (1 - y) * log_expit(-scaled)).mean())
        return float(-log_softmax(scaled, axis=1)[np.arange(len(y)), y].mean())

    def fit(self, logits: Any, y: Any) -> Self:
        """Fit T on validation ``logits`` (N, C) and labels ``y``; returns self."""
        self._validate_params()
        z = _logits_2d(logits)
        t = _targets(y, z, self.multi_label)
        result = minimize_scalar(
            lambda log_t: self._nll(z, t, math.exp(log_t)),
            bounds=(math.log(self.min_temperature), math.log(self.max_temperature)),
            method="bounded",
            options={"xatol": 1e-6},
        )
        self.temperature_ = float(math.exp(result.x))
        self.nll_before_ = self._nll(z, t, 1.0)
        self.nll_after_ = self._nll(z, t, self.temperature_)
        return self

    def transform(self, logits: Any) -> np.ndarray:
        """Scaled logits ``logits / T``, shape (N, C)."""
        check_is_fitted(self, "temperature_")
        return _logits_2d(logits) / self.temperature_

    def predict_proba(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities (N, C): softmax or, multi-label, sigmoid of ``logits / T``."""
        check_is_fitted(self, "temperature_")
        return _probabilities(_logits_2d(logits), self.temperature_, self.multi_label)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters and fitted temperature."""
        check_is_fitted(self, "temperature_")
        return {**self.get_params(), "temperature": self.temperature_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TemperatureScaler:
        """Rebuild a fitted scaler from :meth:`to_dict` output."""
        keys = ("multi_label", "min_temperature", "max_temperature", "temperature")
        _require(d, keys, cls.__name__)
        scaler = cls(**{k: d[k] for k in keys[:-1]})
        scaler._validate_params()
        temperature = float(d["temperature"])
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"{cls.__name__}: temperature must be positive; got {temperature}.")
        scaler.temperature_ = temperature
        return scaler


# --------------------------------------------------------------------------- biases


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


# --------------------------------------------------------------------------- thresholds


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


# --------------------------------------------------------------------------- config + bundle


@dataclass
class Calibration:
    """Fitted calibration stored in a model directory (``calibration.json``).

    ``probabilities(logits)`` gives calibrated probabilities and ``decide(logits)`` the
    final labels. ``decision`` is ``"argmax"`` or ``"bias"`` (single-label) or
    ``"threshold"`` (multi-label); None picks ``"argmax"`` / ``"threshold"``. A multi-label
    calibration without tuned ``thresholds`` uses :data:`DEFAULT_THRESHOLD`. The ``*_before``
    / ``*_after`` fields report validation ECE and macro-F1 of the raw model (T=1, argmax or
    default threshold) and with this calibration. ``adopted`` says whether tuned offsets or
    thresholds are in use, ``reason`` why (or why not), ``cv_gain`` the mean held-out macro-F1
    gain when the tuned rule was cross-validated; None for files written before they existed.
    """

    temperature: float = 1.0
    biases: list[float] | None = None
    thresholds: list[float] | None = None
    decision: Decision | None = None
    multi_label: bool = False
    ensure_one_label: bool = False
    ece_before: float | None = None
    ece_after: float | None = None
    macro_f1_before: float | None = None
    macro_f1_after: float | None = None
    adopted: bool | None = None
    reason: str | None = None
    cv_gain: float | None = None

    def __post_init__(self) -> None:
        if self.decision is None:
            self.decision = "threshold" if self.multi_label else "argmax"
        allowed = ("threshold",) if self.multi_label else ("argmax", "bias")
        kind = "multi-label" if self.multi_label else "single-label"
        if self.decision not in allowed:
            raise ConfigError(
                f"Calibration: decision must be one of {allowed} for {kind}; got {self.decision!r}."
            )
        t = self.temperature
        if not (_is_real(t) and t > 0):
            raise ConfigError(f"Calibration: temperature must be a positive float; got {t!r}.")
        self.temperature = float(t)
        self.biases = self._float_list(self.biases, "biases")
        self.thresholds = self._float_list(self.thresholds, "thresholds")
        if self.multi_label and self.biases is not None:
            raise ConfigError("Calibration: biases are for single-label; got multi_label=True.")
        if not self.multi_label and self.thresholds is not None:
            raise ConfigError("Calibration: thresholds are for multi-label; got multi_label=False.")
        if self.decision == "bias" and self.biases is None:
            raise ConfigError("Calibration: decision='bias' needs biases; got None.")
        if self.thresholds is not None and not all(0 <= v <= 1 for v in self.thresholds):
            raise ConfigError(f"Calibration: thresholds must be in [0, 1]; got {self.thresholds}.")
        if self.adopted is not None and not isinstance(self.adopted, bool):
            raise ConfigError(f"Calibration: adopted must be true or false; got {self.adopted!r}.")
        if self.reason is not None and not isinstance(self.reason, str):
            raise ConfigError(f"Calibration: reason must be a string; got {self.reason!r}.")

    @staticmethod
    def _float_list(values: Any, name: str) -> list[float] | None:
        if values is None:
            return None
        out = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
        if not all(math.isfinite(v) for v in out):
            raise ConfigError(f"Calibration: {name} must be finite; got {out}.")
        return out

    def _check_classes(self, logits: np.ndarray) -> None:
        fitted = self.biases if self.biases is not None else self.thresholds
        if fitted is not None and len(fitted) != logits.shape[1]:
            raise DataError(
                f"logits have {logits.shape[1]} classes but the calibration was fitted on "
                f"{len(fitted)}; is this the calibration of another model?"
            )

    def probabilities(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities (N, C): softmax (single) or sigmoid (multi) of logits / T."""
        z = _logits_2d(logits)
        self._check_classes(z)
        return _probabilities(z, self.temperature, self.multi_label)

    def decide(self, logits: Any) -> np.ndarray:
        """Final decisions: class indices (N,) single-label, 0/1 matrix (N, C) multi-label."""
        z = _logits_2d(logits)
        self._check_classes(z)
        if self.multi_label:
            thresholds = DEFAULT_THRESHOLD if self.thresholds is None else self.thresholds
            probs = _probabilities(z, self.temperature, multi_label=True)
            return _threshold(probs, np.asarray(thresholds), self.ensure_one_label)
        if self.decision == "bias":
            scores = _scaled_log_softmax(z, self.temperature) + np.asarray(self.biases)
            return scores.argmax(axis=1)
        return z.argmax(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`; unknown or missing core keys are a ValueError."""
        _require(d, ("temperature", "decision", "multi_label"), cls.__name__)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}; expected {sorted(known)}.")
        return cls(**d)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write JSON atomically (temp file in the same directory, then ``os.replace``)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a file written by :meth:`save`; a missing or bad file is a ModelDirError."""
        source = Path(path)
        hint = "re-run calibration on the validation set to rewrite it"
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelDirError(
                f"Calibration file {source} does not exist; {hint}, or point to the model "
                "directory that holds it."
            ) from None
        except OSError as e:
            raise ModelDirError(f"Calibration file {source} cannot be read: {e}.") from e
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ModelDirError(
                f"Calibration file {source} is not valid JSON ({e.msg} at line {e.lineno}, "
                f"column {e.colno}); {hint}."
            ) from e
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as e:
            raise ModelDirError(f"Calibration file {source} is invalid: {e} ({hint}).") from e


def _class_names(label_names: Sequence[str] | None, n_classes: int) -> list[str]:
    if label_names is None:
        return [f"class {i}" for i in range(n_classes)]
    if len(label_names) != n_classes:
        raise DataError(
            f"label_names has {len(label_names)} names but the logits have {n_classes} classes."
        )
    return [str(name) for name in label_names]


def _listing(names: list[str], counts: np.ndarray, indices: np.ndarray, limit: int = 8) -> str:
    """``"love (3), surprise (1)"``: the classes at ``indices`` with their counts, fewest first."""
    ordered = sorted(indices.tolist(), key=lambda i: (counts[i], i))
    shown = ", ".join(f"{names[i]} ({int(counts[i])})" for i in ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def validation_folds(targets: np.ndarray, n_folds: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(fit_idx, held_idx)`` for each of ``n_folds`` seeded folds of the validation rows.

    Single-label folds (``targets`` (N,)) are stratified by class, multi-label ones (N, C)
    plain; the same data always gives the same folds.
    """
    index = np.zeros(len(targets))
    if targets.ndim == 2:
        return KFold(n_folds, shuffle=True, random_state=0).split(index)
    return StratifiedKFold(n_folds, shuffle=True, random_state=0).split(index, targets)


def _cv_gain(targets: np.ndarray, n_labels: int, n_folds: int, decisions: Any) -> float:
    """Mean held-out macro-F1 gain of a tuned rule over the raw one, by k-fold on validation.

    ``decisions(fit_idx, held_idx)`` fits the tuned rule on the ``fit_idx`` rows and returns
    ``(tuned, raw)`` decisions for the ``held_idx`` rows (folds from :func:`validation_folds`).
    """
    gains = []
    for fit_idx, held_idx in validation_folds(targets, n_folds):
        tuned, raw = decisions(fit_idx, held_idx)
        held = targets[held_idx]
        gains.append(macro_f1(held, tuned, n_labels) - macro_f1(held, raw, n_labels))
    return float(np.mean(gains))


def _cv_sentence(n_folds: int, gain: float) -> str:
    return (
        f"{n_folds}-fold cross-validation on the validation split gives a mean held-out "
        f"macro-F1 gain of {gain:+.4f}"
    )


@dataclass
class _Tuned:
    """What the decision tuning of :func:`fit_calibration` settled on, and why."""

    adopted: bool
    reason: str
    biases: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    cv_gain: float | None = None


def _tune_biases(
    scores: np.ndarray, targets: np.ndarray, config: CalibrationConfig, names: list[str]
) -> _Tuned:
    """Per-class offsets on ``scores`` (N, C) log-probabilities, if the data supports them."""
    need = config.min_examples_per_class
    counts = np.bincount(targets, minlength=scores.shape[1])
    short = np.flatnonzero(counts < need)
    if short.size:
        return _Tuned(
            False,
            f"{_listing(names, counts, short)} {'has' if short.size == 1 else 'have'} fewer than "
            f"calibration.min_examples_per_class={need} validation examples, too few to tune "
            "per-class offsets; the decision stays argmax.",
        )

    def tuner() -> BiasTuner:
        return BiasTuner(
            config.bias_grid_min,
            config.bias_grid_max,
            config.bias_grid_steps,
            min_improvement=config.bias_min_improvement,
        )

    fitted = tuner().fit(scores, targets)
    if not fitted.biases_.any():
        margin = config.bias_min_improvement
        return _Tuned(
            False,
            "no per-class offsets raise validation macro-F1"
            + (f" by more than calibration.bias_min_improvement={margin:g}" if margin else "")
            + "; the decision stays argmax.",
        )
    fewest = np.array([int(counts.argmin())])
    reason = (
        f"every class has at least {need} validation examples (fewest: "
        f"{_listing(names, counts, fewest)}); the offsets raise validation macro-F1 from "
        f"{fitted.score_before_:.4f} to {fitted.score_after_:.4f}"
    )
    gain = None
    k = config.cv_folds
    if k:
        if counts.min() < k:
            return _Tuned(
                False,
                f"{k}-fold cross-validation (calibration.cv_folds) needs at least {k} validation "
                f"examples of every class, and {_listing(names, counts, fewest)} has fewer; the "
                "decision stays argmax.",
            )
        gain = _cv_gain(
            targets,
            scores.shape[1],
            k,
            lambda fit, held: (
                tuner().fit(scores[fit], targets[fit]).predict(scores[held]),
                scores[held].argmax(axis=1),
            ),
        )
        if not gain > 0:
            return _Tuned(
                False,
                f"{_cv_sentence(k, gain)}, so the offsets do not generalise; the decision stays "
                "argmax.",
                cv_gain=gain,
            )
        reason += f"; {_cv_sentence(k, gain)}"
    return _Tuned(True, reason + ".", biases=fitted.biases_, cv_gain=gain)


def _tune_thresholds(
    probs: np.ndarray, targets: np.ndarray, config: CalibrationConfig, names: list[str]
) -> _Tuned:
    """Per-label (or one global) thresholds on ``probs`` (N, C), where the data supports them."""

    def tuner() -> ThresholdTuner:
        return ThresholdTuner(
            grid=np.round(np.arange(0.01, config.max_threshold + 0.005, 0.01), 10),
            min_threshold=config.min_threshold,
            min_positives=config.min_positives,
            strategy=config.threshold_strategy,
        )

    fitted = tuner().fit(probs, targets)
    positives = targets.sum(axis=0)
    kept = np.flatnonzero(fitted.fallback_)
    need = config.min_positives
    short = (
        f"{_listing(names, positives, kept)} {'has' if kept.size == 1 else 'have'} fewer than "
        f"calibration.min_positives={need} validation positives"
    )
    if kept.size == len(names):
        return _Tuned(
            False, f"{short}: every label keeps the default threshold {DEFAULT_THRESHOLD:g}."
        )
    tuned = len(names) - kept.size
    kind = "a global threshold" if config.threshold_strategy == "global" else "thresholds"
    reason = f"{kind} tuned for {tuned} of {len(names)} labels"
    if kept.size:
        reason += f"; {short} and keep the default threshold {DEFAULT_THRESHOLD:g}"
    gain = None
    k = config.cv_folds
    if k:
        if len(targets) < k:
            return _Tuned(
                False,
                f"{k}-fold cross-validation (calibration.cv_folds) needs at least {k} validation "
                f"rows; got {len(targets)}. Every label keeps the default threshold "
                f"{DEFAULT_THRESHOLD:g}.",
            )
        ensure_one = config.ensure_one_label
        gain = _cv_gain(
            targets,
            probs.shape[1],
            k,
            lambda fit, held: (
                tuner().fit(probs[fit], targets[fit]).predict(probs[held], ensure_one),
                _threshold(probs[held], DEFAULT_THRESHOLD, ensure_one),
            ),
        )
        if not gain > 0:
            return _Tuned(
                False,
                f"{_cv_sentence(k, gain)}, so tuned thresholds do not generalise; every label "
                f"keeps the default threshold {DEFAULT_THRESHOLD:g}.",
                cv_gain=gain,
            )
        reason += f"; {_cv_sentence(k, gain)}"
    return _Tuned(True, reason + ".", thresholds=fitted.thresholds_, cv_gain=gain)


def fit_calibration(
    logits: Any,
    y: Any,
    config: CalibrationConfig,
    multi_label: bool = False,
    label_names: Sequence[str] | None = None,
) -> Calibration:
    """Fit a :class:`Calibration` on **validation** logits (N, C) and labels.

    Give it the validation split, never the test split: temperature, offsets and thresholds
    are tuned to these labels, so scores on the same data are optimistic. ``y`` is (N,) class
    indices, or (N, C) multi-hot with ``multi_label=True``. Fits T (if
    ``config.temperature``; it changes no argmax nor 0.5-threshold decision), then offsets on
    ``log_softmax(logits / T)`` (``"bias"``) or thresholds on ``sigmoid(logits / T)``
    (``"threshold"``).

    Tuned offsets are adopted only when every class has ``config.min_examples_per_class``
    validation examples, they raise validation macro-F1, and (with ``config.cv_folds``) they
    raise it on held-out folds; otherwise the decision stays argmax. A label with fewer than
    ``config.min_positives`` positives keeps :data:`DEFAULT_THRESHOLD`. ``adopted`` and
    ``reason`` record the outcome, in the words of ``label_names`` when given. Also records
    validation ECE and macro-F1 before (T=1, argmax / default threshold) and after.
    """
    z = _logits_2d(logits)
    targets = _targets(y, z, multi_label)
    decision = config.resolved_decision(multi_label)
    names = _class_names(label_names, z.shape[1])

    temperature = 1.0
    if config.temperature:
        temperature = TemperatureScaler(multi_label=multi_label).fit(z, targets).temperature_

    if decision == "bias":
        tuned = _tune_biases(_scaled_log_softmax(z, temperature), targets, config, names)
        if not tuned.adopted:
            decision = "argmax"
    elif decision == "threshold":
        probs = _probabilities(z, temperature, multi_label=True)
        tuned = _tune_thresholds(probs, targets, config, names)
    else:
        tuned = _Tuned(False, "calibration.decision is 'argmax': only the temperature is fitted.")

    raw = Calibration(multi_label=multi_label)
    calibration = Calibration(
        temperature=temperature,
        biases=None if tuned.biases is None else tuned.biases.tolist(),
        thresholds=None if tuned.thresholds is None else tuned.thresholds.tolist(),
        decision=decision,
        multi_label=multi_label,
        ensure_one_label=config.ensure_one_label and multi_label,
        adopted=tuned.adopted,
        reason=tuned.reason,
        cv_gain=tuned.cv_gain,
    )
    calibration.ece_before = expected_calibration_error(
        raw.probabilities(z), targets, config.ece_bins
    )
    calibration.ece_after = expected_calibration_error(
        calibration.probabilities(z), targets, config.ece_bins
    )
    calibration.macro_f1_before = macro_f1(targets, raw.decide(z), z.shape[1])
    calibration.macro_f1_after = macro_f1(targets, calibration.decide(z), z.shape[1])
    return calibration
