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

The package holds the stage's parts: the sweep and its search space (:mod:`.space`), one trial
(:mod:`.trial`), the study's storage (:mod:`.storage`) and the files it writes (:mod:`.results`);
their public names are importable from here. :func:`tune` runs the study.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emorec._io import atomic_write_text
from emorec.artifacts import CONFIG_FILE
from emorec.config import Config, merge, validate_config
from emorec.errors import MissingDependencyError
from emorec.tune.results import TuneResult, write_outputs
from emorec.tune.space import (
    PER_LABEL_KEYS,
    ObjectiveConfig,
    ParameterSpace,
    PrunerConfig,
    Scalar,
    SweepConfig,
    _base_params,
    _nest,
    check_sweep_fits,
    load_sweep,
    sample_overrides,
    tunable_keys,
    validate_sweep,
)
from emorec.tune.storage import (
    _counted,
    _fail_stale,
    _open_study,
    _quiet_optuna,
    mask_url,
    open_storage,
)
from emorec.tune.trial import _Context, _objective

# Private names the tests read from here (tests/test_metrics.py, tests/test_tune.py).
from emorec.tune.trial import _objective_terms as _objective_terms
from emorec.tune.trial import _reporter as _reporter

__all__ = [
    "PER_LABEL_KEYS",
    "TUNE_SUBDIR",
    "ObjectiveConfig",
    "ParameterSpace",
    "PrunerConfig",
    "Scalar",
    "SweepConfig",
    "TuneResult",
    "check_sweep_fits",
    "load_sweep",
    "mask_url",
    "open_storage",
    "sample_overrides",
    "tunable_keys",
    "tune",
    "validate_sweep",
    "write_outputs",
]

logger = logging.getLogger(__name__)

TUNE_SUBDIR = "tune"


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
        rare=np.argsort(counts, kind="stable")[: sweep.objective.rare_k],
        n_train=len(prepared.splits["train"]),
        trial_root=out / "trials",
        progress=progress,
    )
    atomic_write_text(
        out / "sweep.yaml", yaml.safe_dump(sweep.model_dump(mode="json"), sort_keys=False)
    )
    atomic_write_text(out / CONFIG_FILE, config.to_yaml())

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


def _log_trial(trial: Any, total: int) -> None:
    from optuna.trial import TrialState

    what = {
        TrialState.COMPLETE: f"value {trial.value}",
        TrialState.PRUNED: "pruned",
        TrialState.FAIL: f"failed: {trial.user_attrs.get('error', '?')}",
    }.get(trial.state, trial.state.name.lower())
    logger.info("Trial %d/%d %s", trial.number + 1, total, what)
