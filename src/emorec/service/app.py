"""The FastAPI application: :func:`create_app` builds it from the settings, the routers of
:mod:`emorec.service.routes`, the middleware and error handlers of
:mod:`emorec.service.middleware`, the dashboard and the API docs.

The model is loaded once in the lifespan (never at import), the database is migrated to the
newest revision at startup, and an embedded job worker runs in-process unless
``EMOREC_EMBEDDED_WORKER=false``. Names that used to live here (the middleware classes,
``INTERNAL_ERROR``, the route functions) still import from this module.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import emorec
from emorec.errors import EmorecError
from emorec.service.db import make_engine, model_name, redact_url, session_factory, upgrade_database
from emorec.service.deps import API_KEY_HEADER, ServiceState
from emorec.service.jobs import JobQueue, start_embedded_consumer
from emorec.service.middleware import (
    CONTENT_SECURITY_POLICY,
    INTERNAL_ERROR,
    SECURITY_HEADERS,
    AccessLogQueryFilter,
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    add_exception_handlers,
    body_limits,
    filter_access_log,
)
from emorec.service.routes import health as health_routes
from emorec.service.routes import history as history_routes
from emorec.service.routes import jobs as jobs_routes
from emorec.service.routes import predict as predict_routes
from emorec.service.routes.health import health, ready
from emorec.service.routes.history import history, stats
from emorec.service.routes.predict import explain, predict
from emorec.service.settings import ServiceSettings, load_settings

if TYPE_CHECKING:
    from emorec.inference import EmotionClassifier

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "INTERNAL_ERROR",
    "SECURITY_HEADERS",
    "STATIC_DIR",
    "AccessLogQueryFilter",
    "BodyLimitMiddleware",
    "SecurityHeadersMiddleware",
    "create_app",
    "explain",
    "health",
    "history",
    "predict",
    "ready",
    "stats",
    "swagger_ui_dir",
]

logger = logging.getLogger("emorec.service")

STATIC_DIR = Path(__file__).parent / "static"
ROUTERS = (health_routes.router, predict_routes.router, history_routes.router, jobs_routes.router)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ServiceSettings = app.state.settings
    logging.getLogger("emorec").setLevel(settings.log_level.upper())
    engine = make_engine(settings.db_url)
    try:
        upgrade_database(engine)
        classifier = app.state.injected_classifier
        if classifier is None:
            from emorec.inference import EmotionClassifier

            classifier = EmotionClassifier.from_pretrained(
                settings.model_dir, backend=settings.backend
            )
        model_dir = getattr(classifier, "model_dir", None) or settings.model_dir
        state = ServiceState(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            classifier=classifier,
            model_name=model_name(model_dir),
        )
        state.jobs = JobQueue(settings)
        if settings.embedded_worker:
            state.worker = start_embedded_consumer(state.jobs)
        app.state.service = state
        # Where the keys and history are: a key created against another database is a 401.
        logger.info(
            "Serving %s (%s, %d emotions); database %s, data dir %s.",
            state.model_name,
            state.backend,
            len(classifier.labels),
            redact_url(settings.db_url),
            settings.data_dir.absolute(),
        )
        yield
    finally:
        state = getattr(app.state, "service", None)
        app.state.service = None
        if state is not None and state.worker is not None:
            state.worker.stop()
        if state is not None and state.jobs is not None:
            state.jobs.close()
        engine.dispose()


def create_app(
    settings: ServiceSettings | None = None, classifier: EmotionClassifier | None = None
) -> FastAPI:
    """The service app. ``settings`` default to the environment; ``classifier`` (already
    loaded) replaces loading ``settings.model_dir`` at startup, e.g. in tests.
    """
    # From the environment: that is how `emorec serve` hands them to uvicorn's workers.
    settings = settings or load_settings()
    app = FastAPI(
        title="emorec",
        version=emorec.__version__,
        description="Text emotion recognition: predictions, explanations, batch jobs, history.",
        lifespan=_lifespan,
        # FastAPI's own /docs and /redoc load their scripts from a CDN; /docs is served from
        # the fastapi-offline package instead (see _mount_docs), so it works offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.injected_classifier = classifier
    app.state.service = None
    for router in ROUTERS:
        app.include_router(router)
    add_exception_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit=body_limits(settings))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Content-Type"],
        )
    # Outermost, so that every answer has them, the 413s of BodyLimitMiddleware included.
    app.add_middleware(SecurityHeadersMiddleware)
    filter_access_log()
    _mount_dashboard(app)
    _mount_docs(app)
    return app


_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" href="/docs-static/favicon.png">
  <link rel="stylesheet" href="/docs-static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <script src="/docs-static/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


def swagger_ui_dir() -> Path:
    """Swagger UI 5's files (it reads OpenAPI 3.1), from the fastapi-offline package."""
    try:
        import fastapi_offline
    except ImportError:
        raise EmorecError(
            "The API docs need the fastapi-offline package: pip install 'emorec[service]'."
        ) from None
    return Path(fastapi_offline.__file__).parent / "static"


def _mount_docs(app: FastAPI) -> None:
    """Interactive API docs at /docs with Swagger UI's files served by the app itself.

    FastAPI's page starts Swagger UI with an inline script, which the CSP forbids; this page
    starts it from ``static/docs.js`` instead.
    """
    import html

    from fastapi.responses import HTMLResponse

    page = _DOCS_PAGE.format(
        title=html.escape(f"{app.title} API"),
        openapi_url=html.escape(app.openapi_url or "/openapi.json"),
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    app.mount("/docs-static", StaticFiles(directory=swagger_ui_dir()), name="docs-static")


def _mount_dashboard(app: FastAPI) -> None:
    index = STATIC_DIR / "index.html"

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        if not index.is_file():
            raise HTTPException(404, "The dashboard is not installed (static/index.html).")
        return FileResponse(index)

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
