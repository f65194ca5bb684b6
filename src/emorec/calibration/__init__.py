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

from emorec.calibration._common import CALIBRATION_FILENAME, DEFAULT_THRESHOLD
from emorec.calibration.bias import BiasTuner
from emorec.calibration.fit import can_fold, fit_calibration, validation_folds
from emorec.calibration.reliability import expected_calibration_error, reliability_curve
from emorec.calibration.rule import Calibration
from emorec.calibration.temperature import TemperatureScaler
from emorec.calibration.thresholds import ThresholdTuner
from emorec.config.sections import CalibrationConfig, Decision
from emorec.metrics import macro_f1

__all__ = [
    "CALIBRATION_FILENAME",
    "DEFAULT_THRESHOLD",
    "BiasTuner",
    "Calibration",
    "CalibrationConfig",
    "Decision",
    "TemperatureScaler",
    "ThresholdTuner",
    "can_fold",
    "expected_calibration_error",
    "fit_calibration",
    "macro_f1",
    "reliability_curve",
    "validation_folds",
]
