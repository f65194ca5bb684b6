"""The fitted decision rule of a model directory (``calibration.json``)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emorec._io import atomic_write_json
from emorec.calibration._common import (
    DEFAULT_THRESHOLD,
    _is_real,
    _logits_2d,
    _require,
)
from emorec.calibration.bias import BiasTuner
from emorec.calibration.temperature import TemperatureScaler, _scaled_log_softmax
from emorec.calibration.thresholds import ThresholdTuner
from emorec.config.sections import Decision
from emorec.errors import ConfigError, DataError, ModelDirError
from emorec.task import Task, task_for


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
        task = self.task
        if self.decision is None:
            self.decision = task.untuned_decision
        task.check_decision(self.decision)
        t = self.temperature
        if not (_is_real(t) and t > 0):
            raise ConfigError(f"Calibration: temperature must be a positive float; got {t!r}.")
        self.temperature = float(t)
        self.biases = self._float_list(self.biases, "biases")
        self.thresholds = self._float_list(self.thresholds, "thresholds")
        for values, name, decision in (
            (self.biases, "biases", "bias"),
            (self.thresholds, "thresholds", "threshold"),
        ):
            if values is not None and decision not in task.decisions:
                raise ConfigError(
                    f"Calibration: {name} do not fit a {task.title} model "
                    f"(multi_label={self.multi_label})."
                )
        if self.decision == "bias" and self.biases is None:
            raise ConfigError("Calibration: decision='bias' needs biases; got None.")
        if self.thresholds is not None and not all(0 <= v <= 1 for v in self.thresholds):
            raise ConfigError(f"Calibration: thresholds must be in [0, 1]; got {self.thresholds}.")
        if self.adopted is not None and not isinstance(self.adopted, bool):
            raise ConfigError(f"Calibration: adopted must be true or false; got {self.adopted!r}.")
        if self.reason is not None and not isinstance(self.reason, str):
            raise ConfigError(f"Calibration: reason must be a string; got {self.reason!r}.")

    @property
    def task(self) -> Task:
        """The task this rule decides for (stored as the ``multi_label`` flag)."""
        return task_for(self.multi_label)

    @classmethod
    def untuned(cls, task: Task) -> Calibration:
        """The rule of an uncalibrated model: T = 1, argmax or the default threshold."""
        return cls(multi_label=task.multi_label)

    @property
    def tuned(self) -> bool:
        """Whether tuned offsets or thresholds make the decisions."""
        return self.biases is not None if self.decision == "bias" else self.thresholds is not None

    def scaler(self) -> TemperatureScaler:
        """The fitted temperature scaler whose probabilities this rule reports."""
        return TemperatureScaler.fitted(self.temperature, self.multi_label)

    def decision_estimator(self) -> BiasTuner | ThresholdTuner | None:
        """The fitted estimator that makes the decisions; None for the plain argmax."""
        if self.decision == "bias":
            return BiasTuner.fitted(self.biases or [])
        if self.decision == "threshold":
            thresholds = DEFAULT_THRESHOLD if self.thresholds is None else self.thresholds
            return ThresholdTuner.fitted(thresholds)
        return None

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
        return self.scaler().predict_proba(z)

    def decide(self, logits: Any) -> np.ndarray:
        """Final decisions: class indices (N,) single-label, 0/1 matrix (N, C) multi-label."""
        z = _logits_2d(logits)
        self._check_classes(z)
        estimator = self.decision_estimator()
        if isinstance(estimator, ThresholdTuner):
            return estimator.predict(self.scaler().predict_proba(z), self.ensure_one_label)
        if isinstance(estimator, BiasTuner):
            # Offsets were tuned on log-probabilities; the same floats keep ties where they were.
            return estimator.predict(_scaled_log_softmax(z, self.temperature))
        return z.argmax(axis=1)

    def decide_at_least_one(self, logits: Any) -> np.ndarray:
        """:meth:`decide`, with the most probable label for a row the thresholds leave empty."""
        return dataclasses.replace(self, ensure_one_label=True).decide(logits)

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
