"""Experiment tracking: the Trainer reports to TensorBoard in the run's work directory."""

from __future__ import annotations

import os

import pytest

from emorec.errors import MissingDependencyError
from emorec.train import TRACKER_PACKAGES, tracking_logs_dir, train, training_arguments


def test_tensorboard_logs_land_in_the_work_dir(make_config) -> None:
    config = make_config("training.report_to=[tensorboard]")
    before = os.environ.get("TENSORBOARD_LOGGING_DIR")
    result = train(config, progress=False)
    logs = tracking_logs_dir(config)
    assert logs == config.output_path("work_dir") / "logs"
    events = list(logs.glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    assert os.environ.get("TENSORBOARD_LOGGING_DIR") == before  # restored after training
    assert result.model_dir.is_dir()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = set()
    for event_file in events:
        accumulator = EventAccumulator(str(event_file))
        accumulator.Reload()
        scalars |= set(accumulator.Tags()["scalars"])
    assert "train/loss" in scalars and "eval/macro_f1" in scalars


def test_no_tracking_by_default(make_config, tmp_path) -> None:
    config = make_config()
    assert config.training.report_to == []
    args = training_arguments(config, tmp_path / "checkpoints", progress=False)
    assert args.report_to == [] and args.run_name == "tiny"


def test_missing_tracker_names_the_install(
    make_config, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TRACKER_PACKAGES, "mlflow", "emorec_no_such_package")
    config = make_config("training.report_to=[mlflow]")
    with pytest.raises(MissingDependencyError, match=r"\['mlflow'\].*pip install"):
        training_arguments(config, tmp_path / "checkpoints", progress=False)
