"""What a sweep searches: the sweep file's schema, and the values a trial samples from it.

A sweep (:class:`SweepConfig`) maps config keys to their search spaces (:class:`ParameterSpace`).
Trials turn sampled values into config overrides (:func:`sample_overrides`); before any trial
runs, :func:`check_sweep_fits` makes sure every edge of every space gives a valid config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from emorec._strict import StrictModel
from emorec.config import (
    Config,
    config_reference,
    describe_error,
    merge,
    parse_yaml,
    validate_config,
)
from emorec.errors import ConfigError

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
