"""Where a study lives: its Optuna storage, its sampler and pruner, the trials that count.

The storage is an RDB one (SQLite by default, or any SQLAlchemy URL) whose trials beat a
heartbeat, so a killed worker's trial is failed and retried, and several workers can share one
study.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emorec.errors import ConfigError, MissingDependencyError
from emorec.tune.space import PrunerConfig, SweepConfig

_SCHEMA_ATTEMPTS = 5


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


def _fail_stale(study: Any) -> None:
    """Fail (and queue a retry of) the trials whose worker stopped beating.

    Optuna does this when a trial starts; doing it before counting lets a resumed run see
    that a dead worker's trial no longer fills the study.
    """
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
