"""Alembic environment: run migrations on the connection handed over by ``upgrade_database``.

Configured programmatically (:func:`emorec.service.db.alembic_config`); there is no
alembic.ini. Without a handed-over connection, ``sqlalchemy.url`` from the config is used.
"""

from __future__ import annotations

from alembic import context

from emorec.service.db import Base, make_engine

target_metadata = Base.metadata


def run_migrations() -> None:
    """Migrate online: on the caller's connection, or on a fresh one from sqlalchemy.url."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as fresh:
            _migrate(fresh)
    finally:
        engine.dispose()


def _migrate(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
