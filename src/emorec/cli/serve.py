"""Service commands: `serve` (HTTP API), `worker` (batch jobs) and the `apikey` group."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from rich.table import Table

from emorec.cli._common import (
    BackendChoice,
    ModelDirArg,
    console,
    friendly_errors,
    require_model_dir,
    value_error_as_bad_parameter,
)

ServiceBackendOpt = Annotated[
    BackendChoice | None, typer.Option(help="Inference backend (default: EMOREC_BACKEND or auto).")
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL (default: EMOREC_DATABASE_URL, DATABASE_URL, or the SQLite "
        "file in EMOREC_DATA_DIR)."
    ),
]


@friendly_errors
def serve(
    model_dir: ModelDirArg,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes.")] = 1,
    backend: ServiceBackendOpt = None,
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Run the HTTP API and dashboard (settings: EMOREC_* environment variables or .env)."""
    import uvicorn

    from emorec.service.settings import load_settings

    require_model_dir(model_dir)
    # API worker processes build their settings from the environment, so pass them on there.
    os.environ["EMOREC_MODEL_DIR"] = str(model_dir.resolve())
    if backend is not None:
        os.environ["EMOREC_BACKEND"] = backend
    if database_url is not None:
        os.environ["EMOREC_DATABASE_URL"] = database_url
    settings = load_settings()
    os.environ["EMOREC_DATABASE_URL"] = settings.db_url
    uvicorn.run(
        "emorec.service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level,
        log_config=_uvicorn_log_config(settings.log_level),
    )


def _uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging set-up plus emorec's loggers on its console handler.

    uvicorn applies it in every API worker process, which start without this CLI's logging:
    the service's own lines (the database and data dir it uses, job progress) stay visible.
    """
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["emorec"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


@friendly_errors
def worker(
    model_dir: ModelDirArg,
    workers: Annotated[
        int,
        typer.Option(min=1, help="Worker processes (each takes one part of a job at a time)."),
    ] = 1,
    queue_url: Annotated[
        str | None,
        typer.Option(
            help="redis://host:6379/0 (default: EMOREC_QUEUE_URL, or SQLite in data_dir)."
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL (default: EMOREC_DATABASE_URL, DATABASE_URL or SQLite)."),
    ] = None,
    backend: ServiceBackendOpt = None,
) -> None:
    """Run batch-job workers for the service's queue (stop with Ctrl+C or SIGTERM)."""
    from emorec.service.jobs import run_worker
    from emorec.service.settings import load_settings

    require_model_dir(model_dir)
    settings = load_settings(
        model_dir=model_dir.resolve(),
        queue_url=queue_url,
        database_url=database_url,
        backend=backend,
    )
    run_worker(settings, workers)


def _key_sessions(database_url: str | None) -> tuple[Any, str]:
    """Sessions on the keys' database, and its URL (password masked) to tell the user: a key
    made in another directory lands in another SQLite file, and the service answers 401."""
    from emorec.service.db import make_engine, redact_url, session_factory, upgrade_database
    from emorec.service.settings import StorageSettings, load_settings

    settings = load_settings(StorageSettings, database_url=database_url)
    engine = make_engine(settings.db_url)
    upgrade_database(engine)
    return session_factory(engine), redact_url(settings.db_url)


@friendly_errors
def apikey_create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Who or what the key is for.")],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from emorec.service.auth import create_api_key

    sessions, where = _key_sessions(database_url)
    with sessions() as session, value_error_as_bad_parameter():
        record, key = create_api_key(session, name)
    console.print(
        f"Created API key {record.id} ({record.name}) in the database {where}; a service "
        "accepts it only if it uses this database. The key is shown only now:",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(key, highlight=False, soft_wrap=True)


@friendly_errors
def apikey_list(database_url: DatabaseUrlOpt = None) -> None:
    """List keys: id, name, prefix, created, last used, revoked."""
    from emorec.service.auth import list_api_keys

    sessions, where = _key_sessions(database_url)
    with sessions() as session:
        keys = list_api_keys(session)
    table = Table(title=f"API keys ({len(keys)})", caption=f"database {where}")
    for column in ("id", "name", "prefix", "created", "last used", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.key_prefix + "…",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
            "yes" if key.revoked else "no",
        )
    console.print(table)


@friendly_errors
def apikey_revoke(
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="The key's id, name or prefix (from `list`).")
    ],
    database_url: DatabaseUrlOpt = None,
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from emorec.service.auth import revoke_api_key

    sessions, where = _key_sessions(database_url)
    with sessions() as session, value_error_as_bad_parameter():
        record = revoke_api_key(session, key)
    if record is None:
        raise typer.BadParameter(f"no API key has the id, name or prefix {key!r}")
    console.print(
        f"Revoked API key {record.id} ({record.name}) in the database {where}.", markup=False
    )
