"""One macro-F1 for every stage: sklearn's with ``labels=`` all labels, absent ones scoring 0."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import f1_score
from transformers import EvalPrediction

from emorec.calibration import BiasTuner, CalibrationConfig, ThresholdTuner, fit_calibration
from emorec.errors import DataError
from emorec.evaluation.multi_label import compute_multilabel_metrics
from emorec.evaluation.single_label import compute_metrics
from emorec.export import gate_scores
from emorec.labels import LabelSpace
from emorec.metrics import macro_f1, per_label_f1
from emorec.train import eval_metrics_fn
from emorec.tune import ObjectiveConfig, _objective_terms

NAMES = ["anger", "fear", "joy", "shocked"]


def test_macro_f1_is_sklearn_over_all_labels() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 5, size=50)  # label 5 of 6 never true
        pred = rng.integers(0, 4, size=50)  # labels 4 and 5 never predicted
        expected = f1_score(y, pred, labels=range(6), average="macro", zero_division=0)
        assert macro_f1(y, pred, 6) == pytest.approx(expected, abs=1e-12)
        y_m = rng.integers(0, 2, size=(30, 5))
        p_m = rng.integers(0, 2, size=(30, 5))
        y_m[:, 0] = p_m[:, 0] = 0  # a label never true nor predicted scores 0
        expected = f1_score(y_m, p_m, average="macro", zero_division=0)
        assert macro_f1(y_m, p_m) == pytest.approx(expected, abs=1e-12)
        np.testing.assert_allclose(
            per_label_f1(y_m, p_m), f1_score(y_m, p_m, average=None, zero_division=0)
        )


def test_single_label_macro_f1_needs_the_size_of_the_label_space() -> None:
    with pytest.raises(DataError, match="needs n_labels"):
        macro_f1(np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(DataError, match=r"class indices in \[0, 2\)"):
        macro_f1(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(DataError, match="shapes"):
        macro_f1(np.array([0, 1]), np.array([[0, 1]]), 2)
    with pytest.raises(DataError, match="n_labels is 3"):
        macro_f1(np.zeros((2, 2)), np.zeros((2, 2)), 3)


def _split_without_one_class(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of a 4-label space whose 4th label no row carries nor is given."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=n)
    logits = rng.normal(size=(n, 4)) + 1.5 * np.eye(4)[labels]
    logits[:, 3] -= 10.0  # never predicted either: sklearn's default average leaves it out
    return logits, labels


def test_every_stage_reports_the_same_macro_f1_when_a_class_is_absent() -> None:
    logits, labels = _split_without_one_class()
    decided = logits.argmax(axis=1)
    expected = f1_score(labels, decided, labels=range(4), average="macro", zero_division=0)
    # The present-only average (sklearn's default) differs: the test can tell them apart.
    assert f1_score(labels, decided, average="macro") != pytest.approx(expected)
    space = LabelSpace(tuple(NAMES), multi_label=False)
    prediction = EvalPrediction(predictions=logits, label_ids=labels)
    figures = {
        "early stopping": eval_metrics_fn(space)(prediction)["macro_f1"],
        "tuning objective": eval_metrics_fn(
            space, _objective_terms(np.array([3]), ObjectiveConfig())
        )(prediction)["objective"],
        "bias tuner": BiasTuner().fit(logits, labels).score_before_,
        "calibration": fit_calibration(
            logits, labels, CalibrationConfig(decision="bias"), label_names=NAMES
        ).macro_f1_before,
        "export gate": gate_scores(decided, labels, 4)["macro_f1"],
        "evaluation report": compute_metrics(
            labels, NAMES, {"argmax": (softmax(logits, axis=1), decided)}
        )["argmax/macro_f1"],
    }
    for stage, value in figures.items():
        assert value == pytest.approx(expected, abs=1e-12), stage


def test_every_multi_label_stage_reports_the_same_macro_f1_when_a_label_is_absent() -> None:
    rng = np.random.default_rng(2)
    targets = (rng.random((80, 4)) < 0.4).astype(int)
    targets[:, 3] = 0  # no row carries the 4th label
    logits = rng.normal(size=(80, 4)) + 2.0 * (targets - 0.5)
    decided = (logits > 0).astype(int)
    expected = f1_score(targets, decided, average="macro", zero_division=0)
    space = LabelSpace(tuple(NAMES), multi_label=True)
    prediction = EvalPrediction(predictions=logits, label_ids=targets.astype(np.float32))
    probs = 1 / (1 + np.exp(-logits))
    figures = {
        "early stopping": eval_metrics_fn(space)(prediction)["macro_f1"],
        "tuning objective": eval_metrics_fn(
            space, _objective_terms(np.array([3]), ObjectiveConfig())
        )(prediction)["objective"],
        "export gate": gate_scores(decided, targets, 4)["macro_f1"],
        "evaluation report": compute_multilabel_metrics(
            targets, NAMES, {"fixed": (probs, decided)}, {"fixed": 0.5}
        )["fixed/macro_f1"],
        "threshold tuner": ThresholdTuner(grid=np.array([0.5]), min_positives=0)
        .fit(probs, targets)
        .score_,
    }
    for stage, value in figures.items():
        assert value == pytest.approx(expected, abs=1e-12), stage
