"""``/health`` and ``/ready``: whether the process answers, and whether it can serve."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

import emorec
from emorec.service.db import check_database
from emorec.service.deps import ServiceState
from emorec.service.schemas import Health, Ready

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get(
    "/ready",
    response_model=Ready,
    responses={503: {"model": Ready, "description": "The model or the database is unavailable."}},
)
def ready(request: Request) -> Any:
    """Readiness: the model is loaded and the database answers."""
    # Not StateDep: while the service starts or stops this answers 503 with a Ready body.
    state: ServiceState | None = getattr(request.app.state, "service", None)
    if state is None:
        body = Ready(
            ready=False,
            model=None,
            labels=[],
            multi_label=False,
            backend=None,
            version=emorec.__version__,
            database="unavailable",
        )
        return JSONResponse(jsonable_encoder(body), status_code=503)
    database_ok = check_database(state.engine)
    body = Ready(
        ready=database_ok,
        model=state.model_name,
        labels=state.classifier.labels,
        multi_label=state.classifier.label_space.multi_label,
        backend=state.backend,
        version=emorec.__version__,
        database="ok" if database_ok else "unavailable",
    )
    if not database_ok:
        return JSONResponse(jsonable_encoder(body), status_code=503)
    return body
