"""The database: SQLAlchemy 2 models, engines that suit SQLite and PostgreSQL, migrations.

SQLite (the default, one file) runs in WAL mode with a busy timeout so the API workers and the
queue workers can share the file; PostgreSQL is used through psycopg 3. The schema is owned by
Alembic (``emorec/service/migrations``): :func:`upgrade_database` brings any database to the
newest revision and is safe to call from several processes at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Engine,
    Integer,
    String,
    Text,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from emorec.inference import Prediction

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works: it only has to be the same in every process migrating one database.
_MIGRATION_LOCK_ID = 0x656D6F726563


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime.")
        value = value.astimezone(dt.UTC)
        # SQLite compares datetimes as text: store them all in one naive UTC format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every service table (predictions, API keys, jobs)."""

    type_annotation_map = {  # noqa: RUF012  (SQLAlchemy reads it as a class attribute)
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class ApiKey(Base):
    """An API key: only its SHA-256 hash is stored, the prefix identifies it in listings."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_prefix: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class PredictionRecord(Base):
    """One classified text in the history."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    text: Mapped[str] = mapped_column(Text)
    labels: Mapped[list[str]] = mapped_column()
    top_label: Mapped[str | None] = mapped_column(String(100), index=True)
    scores: Mapped[dict[str, Any]] = mapped_column()
    model: Mapped[str] = mapped_column(String(200))


def model_name(model_dir: str | Path) -> str:
    """The model's name in the history: its directory's name, the same for API and workers."""
    return Path(model_dir).resolve().name


def prediction_rows(
    predictions: Iterable[Prediction], model: str, when: dt.datetime
) -> list[dict[str, Any]]:
    """History rows (``predictions`` table) of ``predictions``, as dicts for ``insert``.

    One definition for the predictions of ``/v1/predict`` and the rows of batch jobs, so the
    history and the statistics count both the same way.
    """
    return [
        {
            "created_at": when,
            # PostgreSQL text cannot hold NUL; keep a visible stand-in instead.
            "text": p.text.replace("\x00", "\ufffd"),
            "labels": p.labels,
            "top_label": p.label,
            "scores": p.scores,
            "model": model,
        }
        for p in predictions
    ]


def redact_url(url: str) -> str:
    """A database or Redis URL with its password masked (``***``), for logs and messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://")[0] + "://..."


def normalize_url(url: str | URL) -> URL:
    """``url`` as a SQLAlchemy URL; bare ``postgres(ql)://`` URLs use psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL lets readers run while a worker writes; the busy timeout makes writers queue up
    # instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str | URL) -> Engine:
    """An engine for ``url`` (SQLite: WAL + busy timeout, parent folder created)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def session_factory(engine: Engine) -> sessionmaker[Any]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Any = None) -> Any:
    """An Alembic ``Config`` for the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_database(url: str | URL | Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade head`` on ``url``; concurrent callers wait for each other.

    PostgreSQL serialises on an advisory lock held by the migrating transaction, SQLite on a
    lock file next to the database (several API workers start at the same time).
    """
    from alembic import command

    # Tables of other modules register on Base.metadata when imported; migrations own the
    # schema, but env.py compares against the full metadata.
    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            from filelock import FileLock

            with FileLock(f"{engine.url.database}.migrate.lock"), engine.begin() as connection:
                command.upgrade(alembic_config(connection), revision)
            return
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
            command.upgrade(alembic_config(connection), revision)
    finally:
        if not isinstance(url, Engine):
            engine.dispose()


def check_database(engine: Engine) -> bool:
    """Whether the database answers a trivial query."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any driver error means "not reachable"
        logger.warning("Database check failed: %s", type(error).__name__)
        return False
    return True
