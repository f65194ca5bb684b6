"""Service settings: environment variables (prefix ``EMOREC_``) and an optional ``.env`` file.

Every field maps to ``EMOREC_<FIELD>`` (``EMOREC_MODEL_DIR``, ``EMOREC_CORS_ORIGINS``...);
the database URL is also read from the conventional ``DATABASE_URL``. Lists accept JSON
(``["https://a.example"]``) or comma-separated values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class StorageSettings(BaseSettings):
    """Where the service keeps its data (enough for ``emorec apikey``, which loads no model)."""

    model_config = SettingsConfigDict(
        env_prefix="EMOREC_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    data_dir: Path = Field(
        Path("emorec-data"),
        description="Where the default SQLite database, queue and job files live.",
    )
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("EMOREC_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="SQLAlchemy URL; default sqlite:///{data_dir}/emorec.db.",
    )

    @model_validator(mode="after")
    def _default_database(self) -> StorageSettings:
        # Resolved here so every process (API workers, queue workers) agrees on one file.
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'emorec.db').absolute()}"
        return self

    @property
    def db_url(self) -> str:
        """The database URL with the SQLite default filled in."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'emorec.db').absolute()}"


class ServiceSettings(StorageSettings):
    """Configuration of ``emorec serve`` and ``emorec worker``."""

    model_dir: Path = Field(description="The emorec model directory to serve.")
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="Inference backend: auto (ONNX when exported), torch or onnx."
    )
    queue_url: str | None = Field(
        None,
        description="redis://... for Redis-backed job queues; default SQLite at "
        "{data_dir}/queue.db.",
    )
    embedded_worker: bool = Field(
        True, description="Run a job worker inside `emorec serve` (one command does everything)."
    )
    require_api_key_for_predict: bool = Field(
        False, description="Require X-API-Key on /v1/predict and /v1/explain too."
    )
    store_history: bool = Field(True, description="Store predictions in the history table.")
    job_history: bool = Field(
        True,
        description="Store the rows of batch jobs in the history too (so the statistics count "
        "them); needs store_history.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS (none by default)."
    )
    max_texts_per_request: int = Field(64, ge=1, description="Texts per /v1/predict request.")
    max_chars_per_text: int = Field(5000, ge=1, description="Characters per text.")
    max_upload_bytes: int = Field(20_000_000, ge=1, description="Size of a job upload (bytes).")
    job_chunk_size: int = Field(256, ge=1, description="Rows classified and committed at once.")
    job_part_rows: int = Field(
        10_000,
        ge=1,
        description="A job is split into parts of this many rows, which idle workers take one "
        "at a time: several workers share a big job.",
    )
    job_lease_seconds: float = Field(
        60, gt=0, description="A job part whose worker is silent this long is restarted."
    )
    job_chunk_pause_seconds: float = Field(
        0,
        ge=0,
        description="Pause after each committed chunk of a job: only to watch progress in "
        "tests and demos; keep 0 in production.",
    )
    log_level: str = Field("info", description="debug, info, warning or error.")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            import json

            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.lower()
        if level not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError(f"must be debug, info, warning, error or critical; got {value!r}")
        return level


def load_settings(cls: type[StorageSettings] = ServiceSettings, **values: Any) -> Any:
    """``cls`` from the environment and ``values``; invalid settings raise ConfigError.

    The message names each bad setting by its environment variable.
    """
    from pydantic import ValidationError

    from emorec.errors import ConfigError

    try:
        return cls(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = str(item["loc"][0]) if item["loc"] else "settings"
            env = name if name.isupper() else f"EMOREC_{name.upper()}"
            problems.append(f"{env}: {item['msg']}")
        raise ConfigError("Invalid service settings: " + "; ".join(problems) + ".") from None
