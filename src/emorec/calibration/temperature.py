"""Temperature scaling: one T minimising validation NLL of softmax/sigmoid(logits / T)."""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_expit, log_softmax
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from emorec.calibration._common import (
    _is_real,
    _logits_2d,
    _param_error,
    _require,
)
from emorec.task import MULTI_LABEL, SINGLE_LABEL, task_for


def _scaled_log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    return log_softmax(logits / temperature, axis=1)


def _softmax_nll(scaled: np.ndarray, y: np.ndarray) -> float:
    return float(-log_softmax(scaled, axis=1)[np.arange(len(y)), y].mean())


def _sigmoid_nll(scaled: np.ndarray, y: np.ndarray) -> float:
    return float(-(y * log_expit(scaled) + (1 - y) * log_expit(-scaled)).mean())


# The negative log-likelihood T minimises, by task.
_NLL = {SINGLE_LABEL.name: _softmax_nll, MULTI_LABEL.name: _sigmoid_nll}


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
        return _NLL[task_for(self.multi_label).name](logits / temperature, y)

    def fit(self, logits: Any, y: Any) -> Self:
        """Fit T on validation ``logits`` (N, C) and labels ``y``; returns self."""
        self._validate_params()
        z = _logits_2d(logits)
        t = task_for(self.multi_label).validate_targets(y, *z.shape)
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

    @classmethod
    def fitted(cls, temperature: float, multi_label: bool = False) -> TemperatureScaler:
        """A scaler already fitted to ``temperature`` (a stored calibration's)."""
        scaler = cls(multi_label=multi_label)
        scaler.temperature_ = float(temperature)
        return scaler

    def transform(self, logits: Any) -> np.ndarray:
        """Scaled logits ``logits / T``, shape (N, C)."""
        check_is_fitted(self, "temperature_")
        return _logits_2d(logits) / self.temperature_

    def predict_proba(self, logits: Any) -> np.ndarray:
        """Calibrated probabilities (N, C): softmax or, multi-label, sigmoid of ``logits / T``."""
        check_is_fitted(self, "temperature_")
        return task_for(self.multi_label).probabilities(_logits_2d(logits), self.temperature_)

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
