"""Calibrators on synthetic data with a known answer: temperature, offsets, thresholds, I/O."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.special import expit, log_softmax, softmax
from sklearn.exceptions import NotFittedError
from sklearn.metrics import f1_score

from emorec.calibration import (
    DEFAULT_THRESHOLD,
    BiasTuner,
    Calibration,
    CalibrationConfig,
    TemperatureScaler,
    ThresholdTuner,
    expected_calibration_error,
    fit_calibration,
    reliability_curve,
)
from emorec.errors import ConfigError, DataError, ModelDirError


def sample_single(rng: np.random.Generator, n: int, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Well-calibrated logits z (N, C) and labels drawn from softmax(z)."""
    z = rng.normal(scale=2.0, size=(n, c))
    p = softmax(z, axis=1)
    y = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return z, y


def sample_multi(rng: np.random.Generator, n: int, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Well-calibrated logits z (N, C) and multi-hot labels drawn from sigmoid(z)."""
    z = rng.normal(loc=-1.0, scale=2.0, size=(n, c))
    return z, (rng.random((n, c)) < expit(z)).astype(int)


def rare_class_shifted(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """4 classes, class 3 rare (5 %); the model under-scores it by 1.5 nats."""
    prior = np.array([0.45, 0.3, 0.2, 0.05])
    y = rng.choice(4, size=n, p=prior)
    z = rng.normal(scale=1.0, size=(n, 4)) + 2.0 * np.eye(4)[y] + np.log(prior)
    z[:, 3] -= 1.5
    return z, y


# --------------------------------------------------------------------------- metrics


def test_ece_by_hand_and_reliability_curve() -> None:
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    y = np.array([0, 0])
    # bin of 0.9: accuracy 1; bin of 0.6: accuracy 0  ->  (0.1 + 0.6) / 2
    assert expected_calibration_error(probs, y, n_bins=10) == pytest.approx(0.35)
    curve = reliability_curve(probs, y, n_bins=10)
    assert curve["counts"].sum() == 2 and curve["counts"][9] == 1 and curve["counts"][6] == 1
    assert curve["accuracy"][9] == 1.0 and curve["confidence"][6] == pytest.approx(0.6)
    assert np.isnan(curve["accuracy"][0])
    np.testing.assert_allclose(curve["bin_centers"][:2], [0.05, 0.15])


def test_ece_rejects_logits_and_bad_bins() -> None:
    with pytest.raises(DataError, match="Did you pass logits"):
        expected_calibration_error(np.array([[3.0, -1.0]]), np.array([0]))
    with pytest.raises(ConfigError, match="n_bins must be a positive integer; got 0"):
        expected_calibration_error(np.array([[0.5, 0.5]]), np.array([0]), n_bins=0)


# --------------------------------------------------------------------------- temperature


@pytest.mark.parametrize("t_true", [0.5, 2.5])
def test_temperature_recovers_known_temperature(t_true: float) -> None:
    z, y = sample_single(np.random.default_rng(1), 4000)
    scaler = TemperatureScaler().fit(z * t_true, y)
    assert scaler.temperature_ == pytest.approx(t_true, rel=0.1)
    assert scaler.nll_after_ < scaler.nll_before_


def test_temperature_multi_label_recovers_known_temperature() -> None:
    z, y = sample_multi(np.random.default_rng(2), 3000)
    scaler = TemperatureScaler(multi_label=True).fit(z * 3.0, y)
    assert scaler.temperature_ == pytest.approx(3.0, rel=0.1)
    np.testing.assert_allclose(scaler.predict_proba(z * 3.0), expit(z * 3.0 / scaler.temperature_))


def test_temperature_scaling_reduces_ece_on_overconfident_logits() -> None:
    rng = np.random.default_rng(3)
    z_val, y_val = sample_single(rng, 3000)
    z_test, y_test = sample_single(rng, 3000)
    scaler = TemperatureScaler().fit(z_val * 3.0, y_val)
    before = expected_calibration_error(softmax(z_test * 3.0, axis=1), y_test)
    after = expected_calibration_error(scaler.predict_proba(z_test * 3.0), y_test)
    assert after < before / 2
    np.testing.assert_allclose(scaler.transform(z_test), z_test / scaler.temperature_)


def test_temperature_parameter_and_fit_errors() -> None:
    z, y = sample_single(np.random.default_rng(4), 20)
    with pytest.raises(ConfigError, match=r"min_temperature must be a positive float; got -1"):
        TemperatureScaler(min_temperature=-1).fit(z, y)
    with pytest.raises(ConfigError, match="max_temperature must be a float > min_temperature"):
        TemperatureScaler(min_temperature=2.0, max_temperature=1.0).fit(z, y)
    with pytest.raises(DataError, match=r"class indices in \[0, 4\)"):
        TemperatureScaler().fit(z, y + 4)
    with pytest.raises(DataError, match="multi_label=True"):
        TemperatureScaler().fit(z, np.eye(4)[y])
    with pytest.raises(NotFittedError):
        TemperatureScaler().predict_proba(z)


# --------------------------------------------------------------------------- biases


def test_bias_tuner_improves_macro_f1_on_held_out_data() -> None:
    rng = np.random.default_rng(5)
    z_val, y_val = rare_class_shifted(rng, 2000)
    z_test, y_test = rare_class_shifted(rng, 5000)
    tuner = BiasTuner().fit(z_val, y_val)
    assert tuner.score_after_ > tuner.score_before_
    assert tuner.biases_.argmax() == 3  # the under-scored class is pushed up
    assert tuner.biases_.mean() == pytest.approx(0.0, abs=1e-12)
    before = f1_score(y_test, z_test.argmax(1), average="macro")
    after = f1_score(y_test, tuner.predict(z_test), average="macro")
    assert after > before + 0.02


def test_bias_tuner_reported_score_is_sklearn_macro_f1() -> None:
    z, y = rare_class_shifted(np.random.default_rng(6), 500)
    tuner = BiasTuner(grid_steps=31).fit(z, y)
    # The vectorised candidate scores drove the search; the final score must agree with sklearn.
    assert tuner.score_after_ == pytest.approx(f1_score(y, tuner.predict(z), average="macro"))
    assert tuner.score_before_ == pytest.approx(f1_score(y, z.argmax(1), average="macro"))


def test_bias_tuner_keeps_zero_offsets_without_improvement() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    z = np.eye(3)[y] * 5.0  # already perfect
    tuner = BiasTuner().fit(z, y)
    np.testing.assert_array_equal(tuner.biases_, np.zeros(3))
    assert tuner.score_after_ == tuner.score_before_ == 1.0
    z2, y2 = rare_class_shifted(np.random.default_rng(7), 300)
    guarded = BiasTuner(min_improvement=0.99).fit(z2, y2)
    np.testing.assert_array_equal(guarded.biases_, np.zeros(4))


def test_bias_tuner_parameter_validation() -> None:
    z, y = rare_class_shifted(np.random.default_rng(8), 50)
    with pytest.raises(ConfigError, match=r"grid_min must be < grid_max; got grid_min=1.*=0"):
        BiasTuner(grid_min=1.0, grid_max=0.0).fit(z, y)
    with pytest.raises(ConfigError, match=r"grid_steps must be an integer >= 2; got 1"):
        BiasTuner(grid_steps=1).fit(z, y)
    with pytest.raises(ConfigError, match=r"min_improvement must be a float >= 0; got -0.1"):
        BiasTuner(min_improvement=-0.1).fit(z, y)
    with pytest.raises(NotFittedError):
        BiasTuner().predict(z)


# --------------------------------------------------------------------------- thresholds


def synthetic_thresholds(
    rng: np.random.Generator, n: int, t_true: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Label c is on iff its score + small noise exceeds t_true[c]."""
    probs = rng.random((n, t_true.size))
    y = (probs + rng.normal(scale=0.01, size=probs.shape) > t_true).astype(int)
    return probs, y


def test_threshold_tuner_recovers_known_thresholds() -> None:
    t_true = np.array([0.2, 0.4, 0.65, 0.8])
    probs, y = synthetic_thresholds(np.random.default_rng(9), 2000, t_true)
    tuner = ThresholdTuner().fit(probs, y)
    np.testing.assert_allclose(tuner.thresholds_, t_true, atol=0.03)
    assert not tuner.fallback_.any()
    assert tuner.score_ == pytest.approx(f1_score(y, tuner.predict(probs), average="macro"))


def test_threshold_tuner_rare_labels_keep_the_default_threshold() -> None:
    rng = np.random.default_rng(10)
    probs, y = synthetic_thresholds(rng, 1000, np.array([0.3, 0.5, 0.7]))
    y[:, 2] = 0
    y[:3, 2] = 1  # 3 positives < min_positives=5
    tuner = ThresholdTuner(min_positives=5).fit(probs, y)
    np.testing.assert_array_equal(tuner.fallback_, [False, False, True])
    assert tuner.thresholds_[2] == DEFAULT_THRESHOLD != tuner.global_threshold_
    np.testing.assert_allclose(tuner.thresholds_[:2], [0.3, 0.5], atol=0.03)
    shared = ThresholdTuner(strategy="global").fit(probs, y)
    np.testing.assert_array_equal(
        shared.thresholds_, [shared.global_threshold_] * 2 + [DEFAULT_THRESHOLD]
    )


def test_threshold_tuner_floor_and_ensure_one() -> None:
    probs, y = synthetic_thresholds(np.random.default_rng(11), 1000, np.array([0.02, 0.5]))
    tuner = ThresholdTuner(min_threshold=0.1).fit(probs, y)
    assert tuner.thresholds_.min() >= 0.1
    low = np.array([[0.01, 0.05], [0.9, 0.95]])
    np.testing.assert_array_equal(tuner.predict(low), [[0, 0], [1, 1]])
    np.testing.assert_array_equal(tuner.predict(low, ensure_one=True), [[0, 1], [1, 1]])


def test_threshold_tuner_parameter_validation() -> None:
    probs, y = synthetic_thresholds(np.random.default_rng(12), 20, np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"min_threshold must be a float in \[0, 1\); got 1.5"):
        ThresholdTuner(min_threshold=1.5).fit(probs, y)
    with pytest.raises(ValueError, match=r"strategy must be one of 'per_label', 'global'"):
        ThresholdTuner(strategy="best").fit(probs, y)
    with pytest.raises(ValueError, match=r"min_positives must be an integer >= 0; got -1"):
        ThresholdTuner(min_positives=-1).fit(probs, y)
    with pytest.raises(ValueError, match=r"no grid value is >= min_threshold=0\.5"):
        ThresholdTuner(grid=[0.1, 0.2], min_threshold=0.5).fit(probs, y)
    with pytest.raises(DataError, match="multi-hot"):
        ThresholdTuner().fit(probs, y * 2)


# --------------------------------------------------------------------------- round trips


def test_estimators_round_trip_through_json() -> None:
    rng = np.random.default_rng(13)
    z, y = rare_class_shifted(rng, 400)
    probs, y_m = synthetic_thresholds(rng, 400, np.array([0.3, 0.6]))
    fitted = [
        (TemperatureScaler().fit(z, y), "predict_proba", z),
        (BiasTuner().fit(z, y), "predict", z),
        (ThresholdTuner(grid=[0.2, 0.4, 0.6]).fit(probs, y_m), "predict", probs),
    ]
    for est, method, x in fitted:
        restored = type(est).from_dict(json.loads(json.dumps(est.to_dict())))
        np.testing.assert_array_equal(getattr(restored, method)(x), getattr(est, method)(x))
        assert restored.get_params() == est.get_params()


@pytest.mark.parametrize("multi_label", [False, True])
def test_calibration_save_load_gives_identical_decisions(tmp_path: Path, multi_label) -> None:
    rng = np.random.default_rng(14)
    if multi_label:
        z, y = sample_multi(rng, 600)
    else:
        z, y = rare_class_shifted(rng, 600)
    config = CalibrationConfig(ensure_one_label=True)
    calibration = fit_calibration(z * 2.0, y, config, multi_label=multi_label)
    assert calibration.decision == ("threshold" if multi_label else "bias")
    path = tmp_path / "calibration.json"
    calibration.save(path)
    loaded = Calibration.load(path)
    assert loaded == calibration
    assert Calibration.from_dict(calibration.to_dict()) == calibration
    np.testing.assert_array_equal(loaded.decide(z), calibration.decide(z))
    np.testing.assert_array_equal(loaded.probabilities(z), calibration.probabilities(z))
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]  # no temp file left


def test_fit_calibration_reports_before_and_after() -> None:
    z, y = rare_class_shifted(np.random.default_rng(15), 2000)
    calibration = fit_calibration(z * 3.0, y, CalibrationConfig())
    assert calibration.temperature > 1.5
    assert calibration.ece_after < calibration.ece_before
    assert calibration.macro_f1_after > calibration.macro_f1_before
    assert calibration.macro_f1_after == pytest.approx(
        f1_score(y, calibration.decide(z * 3.0), average="macro")
    )
    plain = fit_calibration(z, y, CalibrationConfig(temperature=False, decision="argmax"))
    assert plain.temperature == 1.0 and plain.biases is None
    np.testing.assert_array_equal(plain.decide(z), z.argmax(1))


def test_fit_calibration_multi_label_thresholds() -> None:
    z, y = sample_multi(np.random.default_rng(16), 2000)
    calibration = fit_calibration(z, y, CalibrationConfig(), multi_label=True)
    assert calibration.thresholds is not None and len(calibration.thresholds) == 4
    assert calibration.macro_f1_after >= calibration.macro_f1_before
    assert calibration.decide(z).shape == z.shape


def test_default_multi_label_decision_uses_default_threshold() -> None:
    calibration = Calibration(multi_label=True)
    assert calibration.decision == "threshold"
    logits = np.array([[0.0, -0.01], [-3.0, -2.0]])  # sigmoid(0) == DEFAULT_THRESHOLD
    assert DEFAULT_THRESHOLD == 0.5
    np.testing.assert_array_equal(calibration.decide(logits), [[1, 0], [0, 0]])
    ensure = Calibration(multi_label=True, ensure_one_label=True)
    np.testing.assert_array_equal(ensure.decide(logits), [[1, 0], [0, 1]])


def test_calibration_config_and_decision_validation() -> None:
    with pytest.raises(ValidationError, match=r"bias_grid_min must be < bias_grid_max"):
        CalibrationConfig(bias_grid_min=3.0, bias_grid_max=-3.0)
    with pytest.raises(ValidationError, match="min_threshold"):
        CalibrationConfig(min_threshold=1.0)
    with pytest.raises(ValidationError, match="threshold_strategy"):
        CalibrationConfig(threshold_strategy="best")
    with pytest.raises(ValidationError, match="temprature"):
        CalibrationConfig(temprature=True)
    z, y = sample_multi(np.random.default_rng(17), 50)
    with pytest.raises(ConfigError, match="decision='bias' does not fit a multi-label problem"):
        fit_calibration(z, y, CalibrationConfig(decision="bias"), multi_label=True)
    with pytest.raises(ConfigError, match="decision='bias' needs biases"):
        Calibration(decision="bias")
    with pytest.raises(DataError, match="logits have 3 classes but the calibration was fitted"):
        Calibration(decision="bias", biases=[0.0, 1.0]).decide(np.zeros((1, 3)))
    assert all(f.description for f in CalibrationConfig.model_fields.values())


def test_load_missing_or_corrupt_file_is_a_model_dir_error(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    with pytest.raises(ModelDirError, match=r"calibration\.json does not exist"):
        Calibration.load(path)
    path.write_text('{"temperature": 1.0, "decision": ')
    with pytest.raises(ModelDirError, match=r"calibration\.json is not valid JSON"):
        Calibration.load(path)
    path.write_text(json.dumps({"temperature": -2.0, "decision": "argmax", "multi_label": False}))
    with pytest.raises(ModelDirError, match=r"calibration\.json is invalid: .*temperature"):
        Calibration.load(path)
    path.write_text(json.dumps({"temperature": 1.0}))
    with pytest.raises(ModelDirError, match=r"missing keys \['decision', 'multi_label'\]"):
        Calibration.load(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ModelDirError, match="expected a JSON object"):
        Calibration.load(path)


def test_bias_candidate_scores_equal_brute_force_sklearn() -> None:
    rng = np.random.default_rng(18)
    # Coarse scores make exact ties with the offsets, exercising argmax's tie-breaking.
    s = np.round(rng.normal(size=(300, 5)), 1)
    y = rng.integers(0, 5, size=300)
    biases = np.round(rng.normal(size=5), 1)
    grid = np.linspace(-3, 3, 61)
    for k in range(5):
        fast = BiasTuner._candidate_f1(s, biases, k, grid, y)
        for g in range(0, 61, 6):
            b = biases.copy()
            b[k] = grid[g]
            expected = f1_score(y, (s + b).argmax(1), average="macro")
            assert fast[g] == pytest.approx(expected, abs=1e-12)


def test_fit_calibration_finds_thresholds_above_0_95() -> None:
    # Losses like ASL inflate probabilities: the best threshold can sit near 1.
    rng = np.random.default_rng(0)
    probs = rng.uniform(0.90, 1.0, size=(400, 2))
    y = (probs > 0.975).astype(int)
    logits = np.log(probs / (1 - probs))
    config = CalibrationConfig(temperature=False, decision="threshold")
    calibration = fit_calibration(logits, y, config, multi_label=True)
    assert all(0.96 <= t <= 0.98 for t in calibration.thresholds)
    assert calibration.macro_f1_after > 0.85 > 0.5 > calibration.macro_f1_before
    with pytest.raises(ValueError, match="max_threshold"):
        CalibrationConfig(min_threshold=0.5, max_threshold=0.4)


# --------------------------------------------------------------------------- data support


def test_offsets_tuned_on_16_rows_are_not_adopted() -> None:
    # 16 validation rows, 4 per class: offsets fitted there are noise (issue 13, item 7).
    rng = np.random.default_rng(19)
    y = np.repeat(np.arange(4), 4)
    z = rng.normal(size=(16, 4)) + np.eye(4)[y]
    calibration = fit_calibration(z, y, CalibrationConfig(), label_names=["a", "b", "c", "d"])
    assert calibration.decision == "argmax" and calibration.adopted is False
    assert calibration.biases is None
    assert "a (4), b (4), c (4), d (4) have fewer than" in calibration.reason
    assert "calibration.min_examples_per_class=20" in calibration.reason
    assert "stays argmax" in calibration.reason
    np.testing.assert_array_equal(calibration.decide(z), z.argmax(axis=1))
    assert calibration.macro_f1_after == calibration.macro_f1_before
    saved = json.loads(json.dumps(calibration.to_dict()))
    assert saved["decision"] == "argmax" and saved["adopted"] is False and saved["reason"]
    assert Calibration.from_dict(saved) == calibration
    # The same rows are enough once the bar is lowered to what they hold.
    lowered = fit_calibration(z, y, CalibrationConfig(min_examples_per_class=4))
    assert lowered.reason != calibration.reason


def test_offsets_are_adopted_when_every_class_has_enough_examples() -> None:
    z, y = rare_class_shifted(np.random.default_rng(20), 2000)
    assert np.bincount(y).min() >= 20
    calibration = fit_calibration(z, y, CalibrationConfig())
    assert calibration.decision == "bias" and calibration.adopted is True
    # Adoption adds nothing to the search: the offsets are the tuner's on the same scores.
    scores = log_softmax(z / calibration.temperature, axis=1)
    np.testing.assert_array_equal(calibration.biases, BiasTuner().fit(scores, y).biases_)
    assert "every class has at least 20 validation examples (fewest: class 3 (" in (
        calibration.reason
    )
    assert calibration.cv_gain is None


def test_cross_validation_refuses_offsets_that_fit_noise() -> None:
    rng = np.random.default_rng(21)
    y = np.repeat(np.arange(4), 60)
    z = 3.0 * rng.normal(size=(240, 4))  # logits unrelated to the labels
    plain = fit_calibration(z, y, CalibrationConfig(temperature=False))
    assert plain.adopted is True  # offsets "help" on the very rows they were tuned on
    assert plain.macro_f1_after > plain.macro_f1_before + 0.02
    checked = fit_calibration(z, y, CalibrationConfig(temperature=False, cv_folds=5))
    assert checked.adopted is False and checked.decision == "argmax"
    assert checked.cv_gain is not None and checked.cv_gain <= 0
    assert "5-fold cross-validation on the validation split" in checked.reason

    z, y = rare_class_shifted(np.random.default_rng(22), 2000)
    real = fit_calibration(z, y, CalibrationConfig(cv_folds=5))
    assert real.adopted is True and real.cv_gain > 0
    assert "5-fold cross-validation" in real.reason
    with pytest.raises(ValidationError, match="cv_folds must be 0"):
        CalibrationConfig(cv_folds=1)


def test_thresholds_only_for_labels_with_enough_positives() -> None:
    rng = np.random.default_rng(23)
    probs, y = synthetic_thresholds(rng, 400, np.array([0.3, 0.6, 0.7]))
    y[:, 2] = 0
    y[:2, 2] = 1  # 2 positives < min_positives=5
    logits = np.log(probs / (1 - probs))
    config = CalibrationConfig(temperature=False)
    names = ["joy", "anger", "grief"]
    calibration = fit_calibration(logits, y, config, multi_label=True, label_names=names)
    assert calibration.adopted is True
    assert calibration.thresholds[2] == DEFAULT_THRESHOLD
    np.testing.assert_allclose(calibration.thresholds[:2], [0.3, 0.6], atol=0.03)
    assert "tuned for 2 of 3 labels" in calibration.reason
    assert "grief (2) has fewer than calibration.min_positives=5" in calibration.reason

    # 16 rows with at most 3 positives a label: nothing is tuned, 0.5 everywhere.
    few = np.zeros((16, 3), dtype=int)
    few[:3, 0] = few[3:5, 1] = few[5:6, 2] = 1
    small = fit_calibration(logits[:16], few, config, multi_label=True, label_names=names)
    assert small.adopted is False and small.thresholds is None
    assert "every label keeps the default threshold 0.5" in small.reason
    np.testing.assert_array_equal(small.decide(logits[:16]), (probs[:16] >= 0.5).astype(int))
