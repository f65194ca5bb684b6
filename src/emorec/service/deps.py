"""What the routes depend on: the shared service state, database sessions, API-key checks and
the error responses every route documents. Routers import these from here, never from the app
that includes them (which would make a circle)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from emorec.service.auth import verify_api_key
from emorec.service.schemas import ErrorResponse
from emorec.service.settings import ServiceSettings

if TYPE_CHECKING:
    from emorec.inference import EmotionClassifier
    from emorec.service.jobs.queue import JobQueue
    from emorec.service.jobs.worker import EmbeddedWorker

API_KEY_HEADER = "X-API-Key"

api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="A key created with `emorec apikey create NAME`.",
)


@dataclass
class ServiceState:
    """What the routes share: settings, database, classifier and the locks around it."""

    settings: ServiceSettings
    engine: Engine
    sessions: sessionmaker[Session]
    classifier: EmotionClassifier
    model_name: str
    # Fast tokenizers are not safe to call from several threads at once ("Already borrowed"),
    # and explanations patch the model: inference runs one request at a time.
    predict_lock: threading.Lock = field(default_factory=threading.Lock)
    explain_lock: threading.Lock = field(default_factory=threading.Lock)
    explainer: EmotionClassifier | None = None
    # The batch job queue and the in-process worker running it (None: external workers only).
    jobs: JobQueue | None = None
    worker: EmbeddedWorker | None = None

    @property
    def backend(self) -> str:
        return "onnx" if self.classifier.backend.name.startswith("onnx") else "torch"


def get_state(request: Request) -> ServiceState:
    state = getattr(request.app.state, "service", None)
    if state is None:  # only between startup failure and shutdown
        raise HTTPException(503, "The service is starting or stopping; try again shortly.")
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _check_key(session: Session, key: str | None) -> None:
    if not key:
        raise HTTPException(
            401,
            f"This endpoint needs an API key in the {API_KEY_HEADER} header; create one with "
            "`emorec apikey create NAME`.",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    if verify_api_key(session, key) is None:
        raise HTTPException(
            401,
            "The API key is not valid (unknown or revoked).",
            headers={"WWW-Authenticate": "ApiKey"},
        )


def require_api_key(
    state: StateDep, key: Annotated[str | None, Security(api_key_scheme)] = None
) -> None:
    """Dependency: a valid, unrevoked X-API-Key."""
    with state.sessions() as session:
        _check_key(session, key)


def predict_api_key(
    state: StateDep, key: Annotated[str | None, Security(api_key_scheme)] = None
) -> None:
    """Dependency: an API key when ``require_api_key_for_predict`` is set."""
    if state.settings.require_api_key_for_predict:
        with state.sessions() as session:
            _check_key(session, key)


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing, unknown or revoked API key."},
    413: {"model": ErrorResponse, "description": "Too many texts, a text too long."},
    422: {"model": ErrorResponse, "description": "The request is malformed."},
}
