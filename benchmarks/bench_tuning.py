"""Benchmark: an Optuna study on dair-emotion with MiniLM, then full trainings scored on test.

    .venv/bin/python -m benchmarks.bench_tuning [--config CONFIG] [--sweep SWEEP]
        [--n-trials N] [--train-fraction F] [--validation-fraction F] [--set key=value]
        [--output NAME]

1. A fresh study (``emorec.tune.tune``) of N trials on a stratified subsample of the training
   and validation splits; its first trial is the untuned base config, so the best trial is
   compared with the default under the same protocol.
2. Two full trainings with calibration and test evaluation (``emorec.pipeline.run``): the base
   config, and the base config with the study's ``best.yaml``.

Writes benchmarks/results/<NAME>.json (default ``tuning``); the study, its plots and the two
models live under runs/<NAME>/ and models/<NAME>-default, models/<NAME>-best.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks._common import write_result
from emorec.config import Config, load_config
from emorec.pipeline import RunResult, run
from emorec.tune import load_sweep, tune


def _scores(result: RunResult) -> dict[str, Any]:
    metrics = result.evaluation.metrics
    rule = result.evaluation.decision_rule
    return {
        "decision_rule": rule,
        "test_macro_f1": metrics[f"{rule}/macro_f1"],
        "test_accuracy": metrics[f"{rule}/accuracy"],
        "test_macro_f1_argmax": metrics["argmax/macro_f1"],
        "val_macro_f1": result.train_metrics["best_validation_macro_f1"],
        "train_seconds": result.train_metrics["train_seconds"],
        "epochs": result.train_metrics["epochs"],
    }


def _settings(config: Config) -> dict[str, Any]:
    """The config without its name and output paths: what decides the trained model."""
    return config.model_dump(exclude={"run_name", "output"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/dair-emotion.yaml")
    parser.add_argument("--sweep", default="configs/sweep-dair-emotion.yaml")
    parser.add_argument("--n-trials", type=int, default=15)
    parser.add_argument("--train-fraction", type=float, default=None)
    parser.add_argument("--validation-fraction", type=float, default=None)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--output", default="tuning", help="Result name and scratch dir name.")
    args = parser.parse_args()

    base_overrides = ["training.resume=false", *args.overrides]
    config = load_config(args.config, [*base_overrides, f"run_name={args.output}"])
    sweep = load_sweep(args.sweep)
    changes: dict[str, Any] = {"n_trials": args.n_trials}
    if args.train_fraction is not None:
        changes["train_fraction"] = args.train_fraction
    if args.validation_fraction is not None:
        changes["validation_fraction"] = args.validation_fraction
    sweep = sweep.model_validate(sweep.model_dump() | changes)

    study_dir = Path("runs") / args.output / "tune"
    shutil.rmtree(study_dir, ignore_errors=True)  # a fresh study every run
    started = time.perf_counter()
    study = tune(config, sweep, output_dir=study_dir, study_name=args.output)
    if study.best_value is None or "best" not in study.artifacts:
        raise SystemExit(f"no trial completed; see {study_dir / 'trials.csv'}")

    default_config = load_config(args.config, [*base_overrides, f"run_name={args.output}-default"])
    best_config = load_config(
        args.config, [*base_overrides, f"run_name={args.output}-best"], [study.artifacts["best"]]
    )
    default_scores = _scores(run(default_config))
    # When the base config won the study, a "best" training would only repeat the default one.
    best_is_default = _settings(best_config) == _settings(default_config)
    best_scores = default_scores if best_is_default else _scores(run(best_config))

    import optuna

    storage = f"sqlite:///{(study_dir / 'study.db').resolve()}"
    trials = optuna.load_study(study_name=args.output, storage=storage).get_trials()
    best_trial = next(t for t in trials if t.number == study.best_trial)
    base_trial = next((t for t in trials if t.user_attrs.get("base") and t.value is not None), None)
    payload = {
        "config": args.config,
        "sweep": args.sweep,
        "overrides": args.overrides,
        "n_trials": study.n_trials,
        "n_complete": study.n_complete,
        "n_pruned": study.n_pruned,
        "n_failed": study.n_failed,
        "train_fraction": sweep.train_fraction,
        "validation_fraction": sweep.validation_fraction,
        "objective": sweep.objective.metric,
        "wall_seconds": study.wall_seconds,
        "mean_trial_seconds": round(
            sum(t.user_attrs.get("train_seconds", 0.0) for t in trials) / len(trials), 2
        ),
        "default_val_macro_f1": base_trial.user_attrs["best_macro_f1"] if base_trial else None,
        "best_val_macro_f1": best_trial.user_attrs["best_macro_f1"],
        "best_trial": study.best_trial,
        "best_params": study.best_overrides,
        "best_is_default": best_is_default,
        "default_test_macro_f1": default_scores["test_macro_f1"],
        "best_test_macro_f1": best_scores["test_macro_f1"],
        "default_full": default_scores,
        "best_full": best_scores,
        "total_wall_seconds": round(time.perf_counter() - started, 2),
    }
    path = write_result(args.output, payload)
    print(f"wrote {path}")
    for key in (
        "n_trials",
        "n_pruned",
        "wall_seconds",
        "default_val_macro_f1",
        "best_val_macro_f1",
        "default_test_macro_f1",
        "best_test_macro_f1",
        "total_wall_seconds",
    ):
        print(f"{key:>24}: {payload[key]}")


if __name__ == "__main__":
    main()
