"""The tune stage: an Optuna hyperparameter search over the training config.

A sweep file (:class:`SweepConfig`) names config keys and their search spaces. Every trial
builds its :class:`~emorec.config.Config` from the base config plus the sampled values
(validated like any config), trains a fresh model on a stratified subsample of the training
and validation splits, reports the validation objective after each evaluation so weak trials
are pruned, and frees the model before the next trial. A trial that raises (out of memory
included) is recorded as failed with its reason and the study goes on.

The study lives in an Optuna RDB storage: a SQLite file by default (a killed run resumes with
``resume=True``) or any SQLAlchemy URL, e.g. PostgreSQL, so several workers on several
machines share one study. ``n_trials`` is the size of the whole study, not of one call: a
resumed run or a second worker only adds the trials still missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import logging
import math
import os
import random
import shutil
import socket
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError, model_validator

from emorec._io import atomic_path, atomic_write_json, atomic_write_text, to_builtin
from emorec._strict import StrictModel
from emorec.config import (
    Config,
    config_reference,
    describe_error,
    merge,
    parse_yaml,
    validate_config,
)
from emorec.errors import ConfigError, EmorecError, MissingDependencyError

logger = logging.getLogger(__name__)

TUNE_SUBDIR = "tune"
_SCHEMA_ATTEMPTS = 5
# The one list-valued config key searched label by label (``per_label: true``).
PER_LABEL_KEYS = ("training.pos_weight",)
Scalar = str | bool | int | float | None


class ParameterSpace(StrictModel):
    """The search space of one config key."""

    type: Literal["float", "int", "categorical"] = Field(
        description="`float` and `int` take `low`/`high` (and `log` or `step`); "
        "`categorical` takes `choices`."
    )
    low: float | None = Field(None, description="Smallest value (float/int).")
    high: float | None = Field(None, description="Largest value (float/int), inclusive.")
    log: bool = Field(False, description="Sample on a log scale (float/int; needs low > 0).")
    step: float | None = Field(None, gt=0, description="Grid step (float/int; not with log).")
    choices: list[Scalar] | None = Field(None, description="Values to choose from (categorical).")
    per_label: bool = Field(
        False,
        description="Sample one value per label (only `training.pos_weight`: one positive "
        "weight per label of a multi-label problem).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpace:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty `choices` list")
            stray = [k for k in ("low", "high", "step") if getattr(self, k) is not None]
            if stray or self.log or self.per_label:
                raise ValueError(
                    "a categorical parameter takes only `choices` "
                    f"(remove {', '.join(stray or ['log/per_label'])})"
                )
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs `low` and `high`")
        if self.choices is not None:
            raise ValueError(f"a {self.type} parameter takes `low`/`high`, not `choices`")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is greater than high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"`log: true` needs low > 0 (got low={self.low:g})")
        if self.log and self.step is not None:
            raise ValueError("give either `log` or `step`, not both")
        if self.type == "int":
            bad = [v for v in (self.low, self.high, self.step) if v is not None and v != int(v)]
            if bad:
                raise ValueError(f"an int parameter needs whole numbers; got {bad}")
        return self

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in this space (for enqueuing the base config's value)."""
        if self.type == "categorical":
            return value in (self.choices or [])
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        assert self.low is not None and self.high is not None  # noqa: S101  (validated)
        if self.type == "int" and value != int(value):
            return False
        return self.low <= value <= self.high


class ObjectiveConfig(StrictModel):
    metric: Literal["macro_f1", "composite"] = Field(
        "macro_f1",
        description="`macro_f1`: validation macro-F1. `composite`: macro-F1 + `rare_weight` × "
        "the mean F1 of the `rare_k` rarest classes/labels (by training count).",
    )
    rare_k: int = Field(2, ge=1, description="How many of the rarest classes the composite uses.")
    rare_weight: float = Field(0.5, ge=0, description="Weight of the rare-class term.")


class PrunerConfig(StrictModel):
    type: Literal["median", "hyperband", "none"] = Field(
        "median", description="Stop weak trials early: `median`, `hyperband` or `none`."
    )
    n_startup_trials: int = Field(
        3, ge=0, description="median: trials that run to the end before any is pruned."
    )
    n_warmup_evaluations: int = Field(
        1, ge=0, description="median: evaluations of a trial before it may be pruned."
    )
    reduction_factor: int = Field(3, ge=2, description="hyperband: the halving rate.")


class SweepConfig(StrictModel):
    """A hyperparameter search: the space, the trial budget and how trials are run."""

    n_trials: int = Field(20, ge=1, description="Trials in the whole study (all workers).")
    timeout_s: float | None = Field(
        None, gt=0, description="Stop starting trials after this many seconds (this worker)."
    )
    seed: int | None = Field(42, description="Sampler seed (None: random).")
    train_fraction: float = Field(
        0.1, gt=0, le=1, description="Stratified share of the training split each trial uses."
    )
    validation_fraction: float = Field(
        0.3, gt=0, le=1, description="Stratified share of the validation split trials score on."
    )
    physical_batch_size: int | None = Field(
        16,
        ge=1,
        description="Most examples per forward pass; a larger sampled batch is reached by "
        "gradient accumulation (None: no limit).",
    )
    evaluations_per_epoch: int = Field(
        1, ge=1, description="Validation evaluations per epoch (the pruner's checkpoints)."
    )
    enqueue_base: bool = Field(
        True,
        description="Run the base config's own values as the first trial (the untuned "
        "reference), for the keys whose value lies inside the space.",
    )
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=list,
        description="Experiment trackers fed by every trial's Trainer (empty: none, even when "
        "the base config has some).",
    )
    parameters: dict[str, ParameterSpace] = Field(
        min_length=1, description="Config keys (`training.learning_rate`, ...) → search space."
    )

    @model_validator(mode="after")
    def _known_keys(self) -> SweepConfig:
        valid = tunable_keys()
        for name, space in self.parameters.items():
            if name not in valid:
                raise ValueError(_unknown_parameter(name, valid))
            if space.per_label and name not in PER_LABEL_KEYS:
                raise ValueError(
                    f"parameter `{name}`: `per_label` only applies to {', '.join(PER_LABEL_KEYS)}"
                )
        return self


def tunable_keys() -> list[str]:
    """Every config key a sweep may search: the leaf keys of :class:`Config`."""
    return [key for key, _, _ in config_reference()]


def _unknown_parameter(name: str, valid: list[str]) -> str:
    import difflib

    hint = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    section = name.split(".", 1)[0]
    same = [k for k in valid if k.startswith(f"{section}.")] or valid
    guess = f" Did you mean `{hint[0]}`?" if hint else ""
    return f"unknown parameter `{name}`: not a config key.{guess} Valid keys: {', '.join(same)}"


def _describe_sweep(error: Any) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden" and len(loc) == 3 and loc[0] == "parameters":
        valid = ", ".join(ParameterSpace.model_fields)
        return f"parameter `{loc[1]}`: unknown key `{loc[2]}`. Valid keys here: {valid}."
    if loc[:1] == ("parameters",) and len(loc) >= 2:
        message = error["msg"].removeprefix("Value error, ")
        return f"parameter `{loc[1]}`: {message}."
    return describe_error(error, SweepConfig)


def validate_sweep(data: Any, source: str = "sweep") -> SweepConfig:
    """Validate a sweep mapping; pydantic errors become one readable ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping, got {type(data).__name__}.")
    try:
        return SweepConfig.model_validate(data)
    except ValidationError as error:
        lines = [_describe_sweep(e) for e in error.errors()]
        raise ConfigError(f"Invalid {source}:\n  - " + "\n  - ".join(lines)) from None


def load_sweep(path: str | Path) -> SweepConfig:
    """Load and validate a sweep YAML file (e.g. ``configs/sweep-dair-emotion.yaml``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Sweep file not found: {path} (resolved to {path.resolve()}).")
    return validate_sweep(parse_yaml(path.read_text(encoding="utf-8"), str(path)), str(path))


# --------------------------------------------------------------------------- helpers


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"training.learning_rate": 1e-4}`` → ``{"training": {"learning_rate": 1e-4}}``."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _lookup(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for part in key.split("."):
        node = node[part]
    return node


def _probe_values(space: ParameterSpace) -> list[Any]:
    if space.type == "categorical":
        return list(space.choices or [])
    cast = int if space.type == "int" else float
    return [cast(space.low), cast(space.high)]


def check_sweep_fits(sweep: SweepConfig, config: Config, labels: list[str]) -> None:
    """Every edge of every space must make a valid config, so no trial dies of a typo'd range."""
    base = config.model_dump(mode="json")
    for name, space in sweep.parameters.items():
        for value in _probe_values(space):
            given = [value] * len(labels) if space.per_label else value
            try:
                validate_config(merge(base, _nest({name: given})))
            except ConfigError as error:
                raise ConfigError(
                    f"sweep parameter `{name}`: the value {value!r} makes an invalid config: "
                    f"{str(error).split(':', 1)[-1].strip()}"
                ) from None


def _suggest(trial: Any, name: str, space: ParameterSpace) -> Any:
    if space.type == "categorical":
        return trial.suggest_categorical(name, space.choices)
    assert space.low is not None and space.high is not None  # noqa: S101  (validated)
    if space.type == "int":
        step = int(space.step or 1)
        return trial.suggest_int(name, int(space.low), int(space.high), step=step, log=space.log)
    return trial.suggest_float(name, space.low, space.high, step=space.step, log=space.log)


def sample_overrides(trial: Any, sweep: SweepConfig, labels: list[str]) -> dict[str, Any]:
    """The trial's values, by config key (a per-label key gets a list in label order)."""
    values: dict[str, Any] = {}
    for name, space in sweep.parameters.items():
        if space.per_label:
            values[name] = [_suggest(trial, f"{name}.{label}", space) for label in labels]
        else:
            values[name] = _suggest(trial, name, space)
    return values


def _base_params(sweep: SweepConfig, config: Config, labels: list[str]) -> dict[str, Any]:
    """Optuna params reproducing the base config, for the keys whose value is in the space."""
    base = config.model_dump(mode="json")
    params: dict[str, Any] = {}
    for name, space in sweep.parameters.items():
        value = _lookup(base, name)
        if space.per_label:
            if isinstance(value, list) and len(value) == len(labels):
                if all(space.contains(v) for v in value):
                    params.update(
                        {f"{name}.{lab}": v for lab, v in zip(labels, value, strict=True)}
                    )
        elif space.contains(value):
            params[name] = int(value) if space.type == "int" else value
    return params


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


def _counted(trials: list[Any]) -> list[Any]:
    """Trials that count towards ``n_trials``: finished or running, but not a failure that was
    retried (a worker died), interrupted by the user, or started after the study was full."""
    from optuna.trial import TrialState

    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    counted = []
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
            counted.append(t)
        elif t.state == TrialState.FAIL and not (
            t.number in retried or t.user_attrs.get("interrupted") or t.user_attrs.get("surplus")
        ):
            counted.append(t)
    return counted


class _StudyFull(EmorecError):
    """Raised inside a trial that another worker's trials made surplus."""


def mask_url(url: str) -> str:
    """The storage URL with any password hidden (safe to print and to write to files)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_storage(url: str, heartbeat_interval: int = 30, grace_period: int | None = None) -> Any:
    """An Optuna RDB storage whose trials beat a heartbeat.

    A worker killed mid-trial stops beating; after ``grace_period`` seconds (default: 3
    heartbeats) the next worker to start a trial marks it failed and queues a retry of it.
    """
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    # Several workers on one SQLite file wait for each other's writes instead of failing.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    for _ in range(_SCHEMA_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                # Heartbeats have been "experimental" since Optuna 2.9; the warning is noise.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period or 3 * heartbeat_interval,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)
                    ),
                )
        except (IntegrityError, ProgrammingError) as error:
            # Workers started together on an empty database race to create Optuna's tables;
            # the losers find them made once the winner commits.
            failure: BaseException = error
            time.sleep(0.5 + random.random())
        except ImportError as error:
            raise MissingDependencyError(
                f"The study storage {mask_url(url)} needs a database driver: {error}"
            ) from None
        except (SQLAlchemyError, ValueError) as error:
            failure = error
            break
    raise ConfigError(
        f"Cannot open the study storage {mask_url(url)}: {failure}. Give a SQLAlchemy URL "
        "such as sqlite:///results/tune/study.db or postgresql+psycopg://user@host/db."
    ) from None


# --------------------------------------------------------------------------- the study


@dataclass
class TuneResult:
    """What :func:`tune` left behind: the study's state and the files written."""

    study_name: str
    storage: str
    output_dir: Path
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    best_value: float | None
    best_trial: int | None
    best_overrides: dict[str, Any]
    base_value: float | None
    wall_seconds: float
    artifacts: dict[str, Path] = field(default_factory=dict)
    skipped_plots: dict[str, str] = field(default_factory=dict)


@dataclass
class _Context:
    config: Config  # base config with the subsample applied
    sweep: SweepConfig
    labels: list[str]
    multi_label: bool
    rare: np.ndarray
    n_train: int
    trial_root: Path
    progress: bool


def _tuning_config(config: Config, sweep: SweepConfig, tokenizer: Any) -> tuple[Config, Any]:
    """The base config restricted to the stratified subsample every trial trains on."""
    from emorec.data import prepare

    full = prepare(config, tokenizer)
    overrides: dict[str, Any] = {}
    n_train, n_val = len(full.splits["train"]), len(full.splits["validation"])
    if sweep.train_fraction < 1:
        overrides["data.max_train_samples"] = max(2, round(sweep.train_fraction * n_train))
    if sweep.validation_fraction < 1:
        # max_eval_samples subsamples test too, which trials never look at.
        overrides["data.max_eval_samples"] = max(2, round(sweep.validation_fraction * n_val))
    if not overrides:
        return config, full
    small = validate_config(merge(config.model_dump(mode="json"), _nest(overrides)))
    return small, prepare(small, tokenizer)


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


def _sampler_seed(sweep: SweepConfig, created: bool, n_existing: int) -> int | None:
    """The sweep's seed for a new study; for a resumed or joined one, a seed this worker
    does not share with the earlier run or the other workers (or they would repeat trials)."""
    if sweep.seed is None:
        return None
    if created:
        return sweep.seed
    token = f"{sweep.seed}-{n_existing}-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
    return int(hashlib.sha256(token.encode()).hexdigest()[:8], 16)


def _open_study(
    storage: Any, name: str, sweep: SweepConfig, resume: bool, url: str
) -> tuple[Any, bool]:
    import optuna

    def create(seed: int | None, load: bool) -> Any:
        return optuna.create_study(
            storage=storage,
            study_name=name,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=_pruner(sweep.pruner),
            load_if_exists=load,
        )

    try:
        return create(_sampler_seed(sweep, True, 0), load=False), True
    except optuna.exceptions.DuplicatedStudyError:
        if not resume:
            raise ConfigError(
                f"A study named {name!r} already exists in {mask_url(url)}. Pass --resume "
                "(resume=True) to continue it or to join it as another worker, or choose "
                "another --study-name."
            ) from None
    existing = optuna.load_study(study_name=name, storage=storage)
    if existing.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ConfigError(f"Study {name!r} in {mask_url(url)} minimises; emorec studies maximise.")
    seed = _sampler_seed(sweep, False, len(existing.trials))
    return create(seed, load=True), False


def _pruner(config: PrunerConfig) -> Any:
    import optuna

    if config.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=config.n_startup_trials, n_warmup_steps=config.n_warmup_evaluations
        )
    if config.type == "hyperband":
        return optuna.pruners.HyperbandPruner(reduction_factor=config.reduction_factor)
    return optuna.pruners.NopPruner()


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def tune(
    config: Config,
    sweep: SweepConfig,
    storage: str | None = None,
    study_name: str | None = None,
    resume: bool = False,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    output_dir: str | Path | None = None,
    progress: bool = False,
    heartbeat_interval: int = 30,
) -> TuneResult:
    """Search ``sweep``'s space around ``config``; write best.yaml, trials.csv and plots.

    ``storage`` is a SQLAlchemy URL (default ``sqlite:///<results_dir>/tune/study.db``) and
    ``study_name`` defaults to the run name. Without ``resume`` the study must be new; with it
    an existing study is continued (or joined by another worker) and a missing one created.
    ``n_trials`` (default: the sweep's) is the size of the whole study: the call runs trials
    until the study holds that many, so a resumed run does only the missing ones.
    """

    from emorec.modeling import load_tokenizer

    try:
        import optuna  # noqa: F401  (checked here so the error comes before any work)
    except ImportError:
        raise MissingDependencyError('Tuning needs Optuna: pip install "emorec[tune]"') from None
    started = time.perf_counter()
    out = Path(output_dir) if output_dir else config.output_path("results_dir") / TUNE_SUBDIR
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    name = study_name or config.run_name
    total = n_trials or sweep.n_trials
    timeout_s = timeout_s or sweep.timeout_s

    with _quiet_optuna():
        rdb = open_storage(url, heartbeat_interval)  # a bad URL fails before any data work
    tokenizer = load_tokenizer(config.model.name)
    small, prepared = _tuning_config(config, sweep, tokenizer)
    space = prepared.label_space
    labels = list(space.names)
    check_sweep_fits(sweep, config, labels)
    counts = np.asarray(space.counts(np.asarray(prepared.splits["train"]["labels"])))
    ctx = _Context(
        config=small,
        sweep=sweep,
        labels=labels,
        multi_label=space.multi_label,
        rare=np.argsort(counts, kind="stable")[: sweep.objective.rare_k],
        n_train=len(prepared.splits["train"]),
        trial_root=out / "trials",
        progress=progress,
    )
    atomic_write_text(
        out / "sweep.yaml", yaml.safe_dump(sweep.model_dump(mode="json"), sort_keys=False)
    )
    atomic_write_text(out / "config.yaml", config.to_yaml())

    with _quiet_optuna():
        study, created = _open_study(rdb, name, sweep, resume, url)
        if created and sweep.enqueue_base:
            study.enqueue_trial(_base_params(sweep, config, labels), user_attrs={"base": True})
        logger.info(
            "Study %r in %s: %d of %d trials done.",
            name,
            mask_url(url),
            len(_counted(study.get_trials(deepcopy=False))),
            total,
        )
        objective = _objective(ctx, total)
        while True:
            _fail_stale(study)
            if len(_counted(study.get_trials(deepcopy=False))) >= total:
                break
            if timeout_s is not None and time.perf_counter() - started > timeout_s:
                logger.info("Timeout of %.0f s reached: no new trials.", timeout_s)
                break
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
            _log_trial(study.get_trials(deepcopy=False)[-1], total)
    with contextlib.suppress(OSError):  # only when empty: tracker logs of trials stay
        ctx.trial_root.rmdir()
    return write_outputs(study, out, url, time.perf_counter() - started)


def _fail_stale(study: Any) -> None:
    """Fail (and queue a retry of) the trials whose worker stopped beating.

    Optuna does this when a trial starts; doing it before counting lets a resumed run see
    that a dead worker's trial no longer fills the study.
    """
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _log_trial(trial: Any, total: int) -> None:
    from optuna.trial import TrialState

    what = {
        TrialState.COMPLETE: f"value {trial.value}",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: f"failed: {trial.user_attrs.get('error', '?')}",
    }.get(trial.state, trial.state.name.lower())
    logger.info("Trial %d/%d %s", trial.number + 1, total, what)


def write_outputs(study: Any, out: Path, url: str, wall_seconds: float) -> TuneResult:
    """best.yaml, trials.csv, summary.json and the Optuna plots of ``study`` in ``out``."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    artifacts: dict[str, Path] = {}

    frame = study.trials_dataframe()
    with atomic_path(out / "trials.csv") as tmp:
        frame.to_csv(tmp, index=False)
    artifacts["trials"] = out / "trials.csv"

    best = max(complete, key=lambda t: t.value) if complete else None
    best_overrides = _nest(best.user_attrs["overrides"]) if best else {}
    if best is not None:
        header = (
            f"# Best trial {best.number} of study {study.study_name!r}: objective {best.value:.4f}"
            f"\n# Use: emorec train CONFIG --set-file {out / 'best.yaml'}\n"
        )
        atomic_write_text(
            out / "best.yaml", header + yaml.safe_dump(best_overrides, sort_keys=False)
        )
        artifacts["best"] = out / "best.yaml"
    base = [t for t in complete if t.user_attrs.get("base")]
    counted = _counted(trials)
    result = TuneResult(
        study_name=study.study_name,
        storage=mask_url(url),
        output_dir=out,
        n_trials=len(counted),
        n_complete=len(complete),
        n_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        n_failed=sum(t.state == TrialState.FAIL for t in counted),
        best_value=best.value if best else None,
        best_trial=best.number if best else None,
        best_overrides=best_overrides,
        base_value=base[0].value if base else None,
        wall_seconds=round(wall_seconds, 2),
        artifacts=artifacts,
    )
    artifacts.update(_write_plots(study, out, result.skipped_plots))
    summary = {k: v for k, v in dataclasses.asdict(result).items() if k != "artifacts"}
    summary["artifacts"] = {k: str(p) for k, p in artifacts.items()}
    atomic_write_json(out / "summary.json", to_builtin(summary, nan_to_none=True))
    artifacts["summary"] = out / "summary.json"
    if best is None:
        reasons = sorted(
            {str(t.user_attrs.get("error")) for t in trials if "error" in t.user_attrs}
        )
        logger.warning(
            "No trial of study %r completed%s",
            study.study_name,
            f"; failures: {'; '.join(reasons)}" if reasons else ".",
        )
    return result


def _write_plots(study: Any, out: Path, skipped: dict[str, str]) -> dict[str, Path]:
    """Optimisation history, parameter importances, parallel coordinates as PNG (best effort:
    a plot Optuna cannot draw yet, e.g. importances from one trial, is skipped and said so)."""
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as vis

    plots = {
        "optimization_history": vis.plot_optimization_history,
        "param_importances": vis.plot_param_importances,
        "parallel_coordinate": vis.plot_parallel_coordinate,
    }
    written: dict[str, Path] = {}
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                # "experimental" since Optuna 2.2, and degenerate-axis notes on small studies.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", UserWarning)
                ax = plot(study)
            figure = (ax.flat[0] if isinstance(ax, np.ndarray) else ax).get_figure()
            figure.set_size_inches(10, 6)
            with atomic_path(out / f"{name}.png") as tmp:
                figure.savefig(tmp, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written[name] = out / f"{name}.png"
        except (ValueError, RuntimeError, ImportError, ZeroDivisionError, IndexError) as error:
            skipped[name] = f"{type(error).__name__}: {error}"
            logger.info("Plot %s skipped: %s", name, error)
        finally:
            plt.close("all")
    return written
