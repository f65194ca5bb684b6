"""Hyperparameter tuning on the tiny model: studies, resume, failures, shared PostgreSQL study."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

import emorec.tune as tune_module
import emorec.tune.trial as trial_module
from emorec.cli import app
from emorec.config import load_config
from emorec.errors import ConfigError
from emorec.tune import check_sweep_fits, load_sweep, tune, validate_sweep

from .conftest import LABELS
from .test_multilabel_pipeline import write_multilabel_jsonl

ROOT = Path(__file__).resolve().parents[1]


def sweep(**changes):
    """A 3-trial sweep over learning rate and batch size; 8 is reached as 4 x 2 accumulated."""
    data = {
        "n_trials": 3,
        "train_fraction": 0.5,
        "validation_fraction": 1.0,
        "physical_batch_size": 4,
        "evaluations_per_epoch": 2,
        "pruner": {"type": "none"},
        "parameters": {
            "training.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "training.per_device_train_batch_size": {"type": "categorical", "choices": [4, 8]},
        },
    }
    return validate_sweep(data | changes)


@pytest.fixture
def config(make_config):
    # One epoch of the 12-row subsample: 2-3 optimiser steps, two evaluations.
    return make_config("training.max_steps=-1", "training.num_epochs=1")


def study_of(result) -> optuna.Study:
    return optuna.load_study(study_name=result.study_name, storage=storage_url(result))


def storage_url(result) -> str:
    return f"sqlite:///{(result.output_dir / 'study.db').resolve()}"


def test_study_exports_best_params_that_train_accepts(config, tmp_path: Path) -> None:
    result = tune(config, sweep())

    trials = study_of(result).get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # Trial 0 is the base config itself: its values, not sampled ones.
    assert trials[0].params == {
        "training.learning_rate": config.training.learning_rate,
        "training.per_device_train_batch_size": config.training.per_device_train_batch_size,
    }
    assert result.base_value == trials[0].value
    for t in trials:
        # Half of the 24 training rows, and two validation scores per epoch for the pruner.
        assert t.user_attrs["train_samples"] == 12
        assert len(t.intermediate_values) == t.user_attrs["evaluations"] >= 2
        batch = t.params["training.per_device_train_batch_size"]
        assert t.user_attrs["physical_batch_size"] == 4
        assert t.user_attrs["gradient_accumulation_steps"] == batch // 4
    best = max(trials, key=lambda t: t.value)
    assert result.best_trial == best.number and result.best_value == best.value

    out = result.output_dir
    assert out == config.output_path("results_dir") / "tune"
    for name in ("trials.csv", "summary.json", "sweep.yaml", "config.yaml", "best.yaml"):
        assert (out / name).is_file(), name
    assert (out / "optimization_history.png").stat().st_size > 0
    assert (out / "parallel_coordinate.png").stat().st_size > 0
    assert len((out / "trials.csv").read_text().strip().splitlines()) == 1 + 3
    best_yaml = yaml.safe_load((out / "best.yaml").read_text())
    assert best_yaml == {
        "training": {
            "learning_rate": best.params["training.learning_rate"],
            "per_device_train_batch_size": best.params["training.per_device_train_batch_size"],
        }
    }

    # `emorec train CONFIG --set-file best.yaml` trains with the tuned values.
    config_file = tmp_path / "run.yaml"
    config_file.write_text(config.to_yaml())
    outcome = CliRunner().invoke(
        app, ["train", str(config_file), "--set-file", str(out / "best.yaml")]
    )
    assert outcome.exit_code == 0, outcome.output
    trained = load_config(config.output_path("model_dir") / "config.yaml")
    assert trained.training.learning_rate == best.params["training.learning_rate"]


def test_resume_continues_the_same_study(config) -> None:
    first = tune(config, sweep(), n_trials=1)
    (before,) = study_of(first).get_trials()

    with pytest.raises(ConfigError, match=r"already exists.*--resume"):
        tune(config, sweep(), n_trials=2)

    resumed = tune(config, sweep(), n_trials=2, resume=True)
    after = study_of(resumed).get_trials()
    assert [t.number for t in after] == [0, 1]
    assert all(t.state == TrialState.COMPLETE for t in after)
    assert (after[0].params, after[0].value, after[0].datetime_start) == (
        before.params,
        before.value,
        before.datetime_start,
    )
    assert after[1].user_attrs.get("base") is None  # the base trial is not queued again
    assert resumed.n_trials == 2
    # A study that is already complete runs nothing more.
    again = tune(config, sweep(), n_trials=2, resume=True)
    assert len(study_of(again).get_trials()) == 2


def test_a_failing_trial_is_recorded_and_the_study_goes_on(config, monkeypatch) -> None:
    real_run, freed = trial_module._run_trial, []

    def run_trial(trial, ctx):
        if trial.number == 0:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real_run(trial, ctx)

    monkeypatch.setattr(trial_module, "_run_trial", run_trial)
    real_free = trial_module._free_memory
    monkeypatch.setattr(trial_module, "_free_memory", lambda: (freed.append(1), real_free()))

    result = tune(config, sweep(n_trials=2))
    trials = study_of(result).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert "simulated" in trials[0].user_attrs["error"]
    assert trials[0].user_attrs["out_of_memory"] is True
    assert (result.n_trials, result.n_complete, result.n_failed) == (2, 1, 1)
    assert len(freed) == 2  # after each trial, the failed one included
    assert result.best_trial == 1


def test_a_dead_workers_trial_is_failed_and_retried_on_resume(config) -> None:
    first = tune(config, sweep(n_trials=1))
    url = storage_url(first)
    # A worker that started trial 1 and was killed: its heartbeat stops and never comes back.
    storage = tune_module.open_storage(url, heartbeat_interval=1)
    dead = optuna.load_study(study_name=first.study_name, storage=storage).ask()
    storage.record_heartbeat(dead._trial_id)
    # Past the grace period of 3 heartbeats (3 s). SQLite's clock has whole seconds, and the
    # check needs more than 3 of them between the two readings: 5 s is past it wherever they fall.
    time.sleep(5)

    resumed = tune(config, sweep(), n_trials=2, resume=True, heartbeat_interval=1)
    trials = study_of(resumed).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert trials[2].system_attrs["failed_trial"] == 1  # the retry of the dead trial
    # The retry replaces the dead trial: the study holds its 2 trials, not 3.
    assert (resumed.n_trials, resumed.n_complete, resumed.n_failed) == (2, 2, 0)


def test_reporter_prunes_when_the_pruner_says_so() -> None:
    class Trial:
        def __init__(self) -> None:
            self.reported: list[tuple[float, int]] = []

        def report(self, value: float, step: int) -> None:
            self.reported.append((value, step))

        def should_prune(self) -> bool:
            return len(self.reported) >= 2

    class State:
        global_step = 3

    trial = Trial()
    reporter = tune_module._reporter(trial, patience=None)
    metrics = {"eval_objective": 0.4, "eval_macro_f1": 0.4, "eval_rare_f1": 0.1}
    reporter.on_evaluate(None, State(), None, metrics=metrics)
    with pytest.raises(optuna.TrialPruned):
        reporter.on_evaluate(None, State(), None, metrics=metrics | {"eval_objective": 0.3})
    assert trial.reported == [(0.4, 1), (0.3, 2)]
    assert reporter.best["objective"] == 0.4


def test_per_label_pos_weights_and_composite_objective(make_config, tmp_path: Path) -> None:
    directory = tmp_path / "ml-data"
    write_multilabel_jsonl(directory / "train.jsonl", 24, 0)
    write_multilabel_jsonl(directory / "validation.jsonl", 16, 100)
    write_multilabel_jsonl(directory / "test.jsonl", 16, 200)
    config = make_config(f"data.path={directory}", "training.loss_type=bce", "run_name=tiny-ml")
    spec = {"type": "float", "low": 0.5, "high": 4.0, "log": True, "per_label": True}
    result = tune(
        config,
        sweep(
            n_trials=1,
            enqueue_base=False,
            train_fraction=1.0,
            objective={"metric": "composite", "rare_k": 1, "rare_weight": 1.0},
            pruner={"type": "hyperband"},
            report_to=["tensorboard"],
            parameters={"training.pos_weight": spec},
        ),
    )
    # report_to reaches every trial's Trainer; its logs are kept beside the study.
    assert list((result.output_dir / "trials" / "trial-0" / "logs").rglob("events.out.tfevents*"))
    trials = study_of(result).get_trials()
    assert all(t.state == TrialState.COMPLETE for t in trials)
    names = sorted(trials[0].params)
    assert names == sorted(f"training.pos_weight.{label}" for label in LABELS)
    for t in trials:
        # composite = macro-F1 + 1.0 x F1 of the rarest label, at the best evaluation.
        assert t.value == pytest.approx(
            t.user_attrs["best_macro_f1"] + t.user_attrs["best_rare_f1"]
        )
    weights = yaml.safe_load((result.output_dir / "best.yaml").read_text())["training"]
    assert len(weights["pos_weight"]) == len(LABELS)


def test_two_workers_share_one_postgresql_study(config, tmp_path: Path, postgres_url) -> None:
    config_file = tmp_path / "run.yaml"
    config_file.write_text(config.to_yaml())
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep().model_dump(mode="json")))
    command = [
        sys.executable,
        "-m",
        "emorec.cli",
        "tune",
        str(config_file),
        "--sweep",
        str(sweep_file),
        "--storage",
        postgres_url,
        "--study-name",
        "shared",
        "--n-trials",
        "4",
        "--resume",  # every worker joins the study (the first one to arrive creates it)
    ]
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    workers = [
        subprocess.Popen(
            [*command, "--output", str(tmp_path / f"worker-{i}")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]

    trials = optuna.load_study(study_name="shared", storage=postgres_url).get_trials()
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    # Exactly the study's size: nothing lost, nothing run twice. A trial started while the other
    # worker filled the study would be marked surplus instead of run.
    assert len(done) == 4
    leftover = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(t.user_attrs.get("surplus") for t in leftover)
    assert sum(t.user_attrs.get("base", False) for t in done) == 1
    # Each worker named itself on its trials; both processes appear unless one finished the
    # whole study before the other had started (not asserted: it depends on start-up times).
    assert {t.user_attrs["worker"] for t in done} <= {
        f"{socket.gethostname()}:{w.pid}" for w in workers
    }


def write_sweep(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "parameters:\n  training.learnig_rate: {type: float, low: 1.0e-5, high: 1.0e-3}\n",
            r"unknown parameter `training.learnig_rate`.*Did you mean `training.learning_rate`"
            r".*Valid keys: .*training.weight_decay",
        ),
        (
            "parameters:\n  training.learning_rate: {type: float, low: 1.0e-3, high: 1.0e-5}\n",
            r"parameter `training.learning_rate`: low \(0.001\) is greater than high \(1e-05\)",
        ),
        (
            "n_trial: 3\nparameters:\n  training.seed: {type: int, low: 1, high: 3}\n",
            r"unknown key `n_trial`. Did you mean `n_trials`",
        ),
        (
            "parameters:\n  training.seed: {type: int, low: 1, high: 3, lo: 2}\n",
            r"parameter `training.seed`: unknown key `lo`. Valid keys here: type, low, high",
        ),
        (
            "parameters:\n  training.loss_type: {type: categorical}\n",
            r"parameter `training.loss_type`: a categorical parameter needs a non-empty `choices`",
        ),
        (
            "parameters:\n  training.seed: {type: int, low: 1, high: 3, per_label: true}\n",
            r"parameter `training.seed`: `per_label` only applies to training.pos_weight",
        ),
        ("parameters: {}\n", r"`parameters`"),
    ],
)
def test_bad_sweep_files_give_clear_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_sweep(write_sweep(tmp_path / "sweep.yaml", text))


def test_a_space_outside_the_config_limits_is_refused_before_any_trial(config) -> None:
    bad = sweep(parameters={"training.warmup_ratio": {"type": "float", "low": 0.0, "high": 1.5}})
    with pytest.raises(ConfigError, match=r"`training.warmup_ratio`: the value 1.5"):
        tune(config, bad)
    db = config.output_path("results_dir") / "tune" / "study.db"
    assert optuna.get_all_study_names(storage=f"sqlite:///{db}") == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("nosuchdb://x/y", r"Cannot open the study storage nosuchdb://x/y"),
        (
            "postgresql+psycopg://emorec:secret@127.0.0.1:1/none",
            r"Cannot open the study storage postgresql\+psycopg://emorec:\*\*\*@127.0.0.1:1/none",
        ),
    ],
)
def test_an_unusable_storage_is_one_clear_error(config, url: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        tune(config, sweep(), storage=url)
    assert "secret" not in str(caught.value)


def test_cli_reports_a_bad_sweep_without_a_traceback(tmp_path: Path, config) -> None:
    config_file = tmp_path / "run.yaml"
    config_file.write_text(config.to_yaml())
    bad = write_sweep(
        tmp_path / "sweep.yaml", "parameters:\n  training.lr: {type: float, low: 1, high: 2}\n"
    )
    outcome = CliRunner().invoke(app, ["tune", str(config_file), "--sweep", str(bad)])
    assert outcome.exit_code == 2
    assert "unknown parameter `training.lr`" in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize(
    ("sweep_file", "config_file"),
    [
        ("configs/sweep-dair-emotion.yaml", "configs/dair-emotion.yaml"),
        ("configs/sweep-goemotions.yaml", "configs/goemotions.yaml"),
    ],
)
def test_shipped_sweeps_fit_their_configs(sweep_file: str, config_file: str) -> None:
    shipped = load_sweep(ROOT / sweep_file)
    base = load_config(ROOT / config_file)
    labels = base.model.labels or [f"label{i}" for i in range(28)]
    check_sweep_fits(shipped, base, labels)
    if base.model.labels:  # dair: every key's base value is in the space, so trial 0 = default
        assert set(tune_module._base_params(shipped, base, labels)) == set(shipped.parameters)
