"""One trial: its config, its training run (through :func:`emorec.train.build_trainer`), the
objective it reports to Optuna, and what it records when it fails."""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emorec._io import to_builtin
from emorec.config import Config, merge, validate_config
from emorec.errors import EmorecError
from emorec.tune.space import ObjectiveConfig, SweepConfig, _nest, sample_overrides
from emorec.tune.storage import _counted


def _physical_batches(per_device: int, accumulation: int, cap: int | None) -> tuple[int, int]:
    """(physical batch, accumulation steps) giving the same effective batch, physical <= cap."""
    if cap is None or per_device <= cap:
        return per_device, accumulation
    physical = max(d for d in range(1, cap + 1) if per_device % d == 0)
    return physical, accumulation * (per_device // physical)


def _objective_terms(
    rare: np.ndarray, objective: ObjectiveConfig
) -> Callable[[np.ndarray], dict[str, float]]:
    """The tuning objective from the per-label validation F1 that training's metrics compute."""

    def terms(per_label: np.ndarray) -> dict[str, float]:
        macro, rare_f1 = float(np.mean(per_label)), float(np.mean(per_label[rare]))
        value = macro if objective.metric == "macro_f1" else macro + objective.rare_weight * rare_f1
        return {"rare_f1": rare_f1, "objective": value}

    return terms


def _free_memory() -> None:
    """Give the trial's model and optimiser memory back before the next trial starts."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _is_oom(error: BaseException) -> bool:
    import torch

    return isinstance(error, MemoryError | torch.cuda.OutOfMemoryError) or (
        "out of memory" in str(error).lower()
    )


class _StudyFull(EmorecError):
    """Raised inside a trial that another worker's trials made surplus."""


@dataclass
class _Context:
    config: Config  # base config with the subsample applied
    sweep: SweepConfig
    labels: list[str]
    rare: np.ndarray
    n_train: int
    trial_root: Path
    progress: bool


def _trial_config(ctx: _Context, overrides: dict[str, Any], number: int) -> Config:
    data = merge(ctx.config.model_dump(mode="json"), _nest(overrides))
    config = validate_config(data, f"config of trial {number}")
    t = config.training
    physical, accumulation = _physical_batches(
        t.per_device_train_batch_size, t.gradient_accumulation_steps, ctx.sweep.physical_batch_size
    )
    steps_per_epoch = max(1, math.ceil(ctx.n_train / (physical * accumulation)))
    run = f"{config.run_name}-trial-{number}"
    return validate_config(
        merge(
            data,
            {
                "run_name": run,
                "training": {
                    "per_device_train_batch_size": physical,
                    "gradient_accumulation_steps": accumulation,
                    "eval_steps": max(1, steps_per_epoch // ctx.sweep.evaluations_per_epoch),
                    "report_to": list(ctx.sweep.report_to),
                    "resume": False,
                },
                "output": {"work_dir": str(ctx.trial_root / f"trial-{number}")},
            },
        ),
        f"config of trial {number}",
    )


def _reporter(trial: Any, patience: int | None) -> Any:
    """A Trainer callback feeding each evaluation to Optuna, pruning and early-stopping."""
    import optuna
    from transformers import TrainerCallback

    class TrialReporter(TrainerCallback):
        def __init__(self) -> None:
            self.evaluations = 0
            self.best: dict[str, float] = {}
            self.stale = 0
            self.last_step = -1

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            metrics = kwargs.get("metrics") or {}
            value = float(metrics["eval_objective"])
            self.evaluations += 1
            self.last_step = state.global_step
            # The evaluation index, not the global step, so trials with different batch sizes
            # are compared at the same share of an epoch.
            trial.report(value, self.evaluations)
            if not self.best or value > self.best["objective"]:
                self.best = {
                    "objective": value,
                    "macro_f1": float(metrics["eval_macro_f1"]),
                    "rare_f1": float(metrics["eval_rare_f1"]),
                    "evaluation": float(self.evaluations),
                }
                self.stale = 0
            else:
                self.stale += 1
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"pruned at evaluation {self.evaluations} (objective {value:.4f})"
                )
            if patience and self.stale >= patience:
                control.should_training_stop = True

    return TrialReporter()


def _run_trial(trial: Any, ctx: _Context) -> float:
    import torch

    from emorec.data import prepare
    from emorec.modeling import load_tokenizer
    from emorec.train import build_trainer, training_arguments

    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    overrides = sample_overrides(trial, ctx.sweep, ctx.labels)
    trial.set_user_attr("overrides", to_builtin(overrides))
    config = _trial_config(ctx, overrides, trial.number)
    t = config.training
    trial.set_user_attr("physical_batch_size", t.per_device_train_batch_size)
    trial.set_user_attr("gradient_accumulation_steps", t.gradient_accumulation_steps)
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    tokenizer = load_tokenizer(config.model.name)
    prepared = prepare(config, tokenizer)
    trial.set_user_attr("train_samples", len(prepared.splits["train"]))
    work_dir = config.output_path("work_dir")
    # Trials keep no checkpoints: the study keeps the parameters, a full training the model.
    args = dataclasses.replace(
        training_arguments(config, work_dir / "checkpoints", ctx.progress),
        save_strategy="no",
        load_best_model_at_end=False,
    )
    reporter = _reporter(trial, t.early_stopping_patience)
    trainer = None
    started = time.perf_counter()
    try:
        trainer = build_trainer(
            config,
            prepared,
            tokenizer,
            args,
            [reporter],
            metrics_extra=_objective_terms(ctx.rare, ctx.sweep.objective),
            fresh_model_per_run=True,
        )
        trainer.train()
        if reporter.last_step != trainer.state.global_step:
            trainer.evaluate()  # the final weights were never scored (run ended between evals)
    finally:
        trial.set_user_attr("train_seconds", round(time.perf_counter() - started, 2))
        trial.set_user_attr("evaluations", reporter.evaluations)
        for key, value in reporter.best.items():
            trial.set_user_attr(f"best_{key}", value)
        if trainer is not None:
            trainer.model = None
            trainer.optimizer = None
            trainer.lr_scheduler = None
        del trainer
        _free_memory()
        if not ctx.sweep.report_to:
            shutil.rmtree(work_dir, ignore_errors=True)
    return reporter.best["objective"]


def _objective(ctx: _Context, n_trials: int) -> Callable[[Any], float]:
    def objective(trial: Any) -> float:
        earlier = [
            t for t in _counted(trial.study.get_trials(deepcopy=False)) if t.number < trial.number
        ]
        if len(earlier) >= n_trials:
            trial.set_user_attr("surplus", True)
            raise _StudyFull(f"the study already had {n_trials} trials when this one started")
        try:
            return _run_trial(trial, ctx)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as error:
            import optuna

            if isinstance(error, optuna.TrialPruned):
                raise
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
            trial.set_user_attr("out_of_memory", _is_oom(error))
            _free_memory()
            raise

    return objective
