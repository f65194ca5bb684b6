"""The FastAPI application: prediction, explanation, history and statistics over one model.

:func:`create_app` builds the app; the model is loaded once in the lifespan (never at import),
the database is migrated to the newest revision at startup, and an embedded job worker runs
in-process unless ``EMOREC_EMBEDDED_WORKER=false``. Every error answers ``{"detail": ...}``
with a plain sentence; unexpected errors are logged here and never shown to the client.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, case, func, insert, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import emorec
from emorec.errors import EmorecError
from emorec.service.db import (
    PredictionRecord,
    check_database,
    make_engine,
    model_name,
    prediction_rows,
    redact_url,
    session_factory,
    upgrade_database,
    utcnow,
)
from emorec.service.deps import (
    API_KEY_HEADER,
    ERRORS,
    ServiceState,
    SessionDep,
    StateDep,
    predict_api_key,
    require_api_key,
)
from emorec.service.schemas import (
    ExplainRequest,
    ExplainResponse,
    Health,
    HistoryItem,
    HistoryPage,
    PredictRequest,
    PredictResponse,
    Ready,
    Score,
    Stats,
    StatsBucket,
    TextPrediction,
    WordScore,
)
from emorec.service.settings import ServiceSettings, load_settings

if TYPE_CHECKING:
    from emorec.inference import EmotionClassifier

logger = logging.getLogger("emorec.service")

STATIC_DIR = Path(__file__).parent / "static"
# JSON may escape one character as up to 6 bytes (\uXXXX, or 12 for a surrogate pair); the
# body limit of /v1/predict leaves room for that plus the envelope.
_JSON_BYTES_PER_CHAR = 12
_ENVELOPE_BYTES = 64 * 1024
INTERNAL_ERROR = "The server hit an unexpected error; it has been logged. Please try again later."


def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    # Times without an offset are read as UTC, the zone everything is stored in.
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# ---- routes ------------------------------------------------------------------------------

router = APIRouter()


@router.get("/health", response_model=Health, tags=["service"])
def health() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get(
    "/ready",
    response_model=Ready,
    tags=["service"],
    responses={503: {"model": Ready, "description": "The model or the database is unavailable."}},
)
def ready(request: Request) -> Any:
    """Readiness: the model is loaded and the database answers."""
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


@router.post(
    "/v1/predict",
    response_model=PredictResponse,
    tags=["predict"],
    dependencies=[Depends(predict_api_key)],
    responses=ERRORS,
)
def predict(body: PredictRequest, state: StateDep) -> PredictResponse:
    """Classify one or many texts with the calibrated decision rule."""
    settings = state.settings
    classifier = state.classifier
    if len(body.texts) > settings.max_texts_per_request:
        raise HTTPException(
            413,
            f"Too many texts: {len(body.texts)}; at most {settings.max_texts_per_request} per "
            "request. Split them, or upload a file to /v1/jobs.",
        )
    for i, text in enumerate(body.texts):
        if len(text) > settings.max_chars_per_text:
            raise HTTPException(
                413,
                f"Text {i} has {len(text)} characters; the limit is {settings.max_chars_per_text}.",
            )
    n_labels = len(classifier.labels)
    if body.top_k is not None and body.top_k > n_labels:
        raise HTTPException(
            422, f"top_k must be between 1 and {n_labels} (the model's emotions); got {body.top_k}."
        )
    with state.predict_lock:
        predictions = classifier.predict(body.texts)
    if body.store and settings.store_history:
        with state.sessions.begin() as session:
            rows = prediction_rows(predictions, state.model_name, utcnow())
            session.execute(insert(PredictionRecord), rows)
    return PredictResponse(
        model=state.model_name,
        multi_label=classifier.label_space.multi_label,
        predictions=[
            TextPrediction(
                text=p.text,
                label=p.label,
                labels=p.labels,
                scores=[
                    Score(label=label, probability=prob)
                    for label, prob in list(p.scores.items())[: body.top_k]
                ],
            )
            for p in predictions
        ],
    )


def _explainer(state: ServiceState) -> EmotionClassifier:
    """A PyTorch classifier for explanations (the served one may run ONNX)."""
    if state.classifier.model is not None:
        return state.classifier
    if state.explainer is None:
        from emorec.inference import EmotionClassifier

        state.explainer = EmotionClassifier.from_pretrained(
            state.settings.model_dir, backend="torch"
        )
    return state.explainer


@router.post(
    "/v1/explain",
    response_model=ExplainResponse,
    tags=["predict"],
    dependencies=[Depends(predict_api_key)],
    responses=ERRORS,
)
def explain(body: ExplainRequest, state: StateDep) -> ExplainResponse:
    """Word attributions for one text: which words drive the (or a given) emotion."""
    settings = state.settings
    if len(body.text) > settings.max_chars_per_text:
        raise HTTPException(
            413,
            f"The text has {len(body.text)} characters; the limit is "
            f"{settings.max_chars_per_text}.",
        )
    labels = state.classifier.labels
    if body.label is not None and body.label not in labels:
        raise HTTPException(
            422, f"label must be one of the model's emotions {labels}; got {body.label!r}."
        )
    with state.explain_lock:
        classifier = _explainer(state)
        # Explaining the served PyTorch model itself: predictions wait until it is done.
        shared = state.predict_lock if classifier is state.classifier else nullcontext()
        with shared:
            (explanation,) = classifier.explain(
                body.text, body.method, body.label, attentions=False
            )
    return ExplainResponse(
        text=body.text,
        label=explanation.target,
        probability=explanation.target_probability,
        method=explanation.method,
        words=[
            WordScore(word=word, source=source, start=start, end=end, score=float(score))
            for word, source, (start, end), score in zip(
                explanation.words,
                explanation.sources,
                explanation.spans,
                explanation.scores,
                strict=True,
            )
        ],
    )


@router.get(
    "/v1/history",
    response_model=HistoryPage,
    tags=["history"],
    dependencies=[Depends(require_api_key)],
    responses=ERRORS,
)
def history(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
    label: Annotated[str | None, Query(max_length=100, description="Top emotion.")] = None,
    since: Annotated[dt.datetime | None, Query(description="ISO time, inclusive.")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO time, exclusive.")] = None,
) -> HistoryPage:
    """Stored predictions, newest first, filtered by top emotion and time."""
    conditions = _time_filter(since, until)
    if label is not None and "\x00" in label:
        raise HTTPException(422, "label must not contain NUL characters.")
    if label is not None:
        conditions.append(PredictionRecord.top_label == label)
    total = session.scalar(select(func.count()).select_from(PredictionRecord).where(*conditions))
    rows = session.scalars(
        select(PredictionRecord)
        .where(*conditions)
        .order_by(PredictionRecord.created_at.desc(), PredictionRecord.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return HistoryPage(
        items=[
            HistoryItem(
                id=row.id,
                created_at=row.created_at,
                text=row.text,
                label=row.top_label,
                labels=row.labels,
                scores=row.scores,
            )
            for row in rows
        ],
        total=total or 0,
        limit=limit,
        offset=offset,
    )


def _time_filter(since: dt.datetime | None, until: dt.datetime | None) -> list[Any]:
    since, until = _as_utc(since), _as_utc(until)
    if since is not None and until is not None and since >= until:
        raise HTTPException(422, "since must be earlier than until.")
    conditions: list[Any] = []
    if since is not None:
        conditions.append(PredictionRecord.created_at >= since)
    if until is not None:
        conditions.append(PredictionRecord.created_at < until)
    return conditions


def _bucket_start(engine: Engine, bucket: Literal["hour", "day"]) -> Any:
    """SQL for the start of each row's time bucket, in UTC, per dialect."""
    column = PredictionRecord.created_at
    if engine.dialect.name == "postgresql":
        return func.date_trunc(bucket, func.timezone("UTC", column))
    if engine.dialect.name == "sqlite":
        # Stored as naive UTC text ("YYYY-MM-DD HH:MM:SS.ffffff").
        fmt = "%Y-%m-%d %H:00:00" if bucket == "hour" else "%Y-%m-%d 00:00:00"
        return func.strftime(fmt, column)
    raise HTTPException(501, f"Statistics are not implemented for {engine.dialect.name}.")


def _parse_bucket(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@router.get(
    "/v1/stats",
    response_model=Stats,
    tags=["history"],
    dependencies=[Depends(require_api_key)],
    responses=ERRORS,
)
def stats(
    state: StateDep,
    session: SessionDep,
    bucket: Literal["hour", "day"] = "day",
    since: Annotated[dt.datetime | None, Query(description="ISO time, inclusive.")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO time, exclusive.")] = None,
) -> Stats:
    """Counts (by top emotion) and mean probabilities per emotion, overall and per bucket."""
    labels = state.classifier.labels
    conditions = _time_filter(since, until)
    record = PredictionRecord
    columns = [func.count()]
    for label in labels:
        columns.append(func.sum(case((record.top_label == label, 1), else_=0)))
        columns.append(func.avg(record.scores[label].as_float()))

    def unpack(values: Any) -> tuple[int, dict[str, int], dict[str, float]]:
        total, rest = int(values[0] or 0), values[1:]
        counts = {label: int(rest[2 * i] or 0) for i, label in enumerate(labels)}
        means = {
            label: float(rest[2 * i + 1])
            for i, label in enumerate(labels)
            if rest[2 * i + 1] is not None
        }
        return total, counts, means

    total, counts, means = unpack(session.execute(select(*columns).where(*conditions)).one())
    start = _bucket_start(state.engine, bucket).label("bucket")
    rows = session.execute(
        select(start, *columns).where(*conditions).group_by(start).order_by(start)
    ).all()
    buckets = []
    for row in rows:
        b_total, b_counts, b_means = unpack(row[1:])
        buckets.append(
            StatsBucket(
                start=_parse_bucket(row[0]),
                total=b_total,
                counts=b_counts,
                mean_probability=b_means,
            )
        )
    return Stats(labels=labels, total=total, counts=counts, mean_probability=means, buckets=buckets)


# ---- errors and limits -------------------------------------------------------------------
def _field_name(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def _validation_message(errors: list[dict[str, Any]]) -> str:
    if any(e.get("type") == "json_invalid" for e in errors):
        return 'The request body is not valid JSON; send a JSON object like {"texts": ["..."]}.'
    problems = [f"{_field_name(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "Invalid request: " + "; ".join(problems) + more + "."


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)  # noqa: S101  (registered for it)
    errors = list(error.errors())
    # Echoing "input" back could return megabytes of the client's own text.
    listed = [
        {"field": _field_name(e.get("loc", ())), "message": e.get("msg"), "type": e.get("type")}
        for e in errors
    ]
    return JSONResponse(
        {"detail": _validation_message(errors), "errors": jsonable_encoder(listed)},
        status_code=422,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)  # noqa: S101  (registered for it)
    detail = error.detail if isinstance(error.detail, str) else str(error.detail)
    if error.status_code == 400:
        # Starlette and FastAPI answer 400 to a body they cannot parse (multipart without its
        # boundary, truncated form data); like every other malformed request it is a 422.
        return _unreadable_body(request.url.path, detail)
    if error.status_code == 404 and detail == "Not Found":
        detail = "There is nothing at this address; the API is described at /docs."
    elif error.status_code == 405:
        detail = "This address does not accept that HTTP method; see /docs."
    return JSONResponse({"detail": detail}, status_code=error.status_code, headers=error.headers)


def _unreadable_body(path: str, reason: str) -> JSONResponse:
    reason = reason.rstrip(".")
    if path.startswith("/v1/jobs"):
        detail = (
            f"The upload could not be read as multipart/form-data ({reason}); send the file in "
            "a form field named file, e.g. curl -F file=@texts.csv -H 'X-API-Key: ...' "
            f"{path}."
        )
    else:
        detail = f"The request body could not be read ({reason}); see /docs for its format."
    problem = {"field": "body", "message": reason, "type": "body_unreadable"}
    return JSONResponse({"detail": detail, "errors": [problem]}, status_code=422)


async def _input_error(_request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=422)


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    # The trace goes to the server log only; the client gets one sentence.
    logger.error("Unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)


class _BodyTooLarge(HTTPException):
    # An HTTPException so that FastAPI's body parsing lets it through (other errors become
    # a generic 400 there) and the handler answers it like any 413.
    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BodyLimitMiddleware:
    """Answer 413 to request bodies over the limit of their path, before they are parsed.

    Declared sizes (Content-Length) are refused at once; chunked bodies are counted as they
    arrive.
    """

    def __init__(self, app: ASGIApp, limit: Callable[[str], tuple[int, str]]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self.limit(scope["path"])
        message = f"{what} is larger than the limit of {limit:,} bytes."
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False  # the server rejects malformed lengths itself
            if too_large:
                await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message_in = await receive()
            if message_in["type"] == "http.request":
                received += len(message_in.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(message)
            return message_in

        async def tracking_send(message_out: Message) -> None:
            nonlocal started
            if message_out["type"] == "http.response.start":
                started = True
            await send(message_out)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)


# ---- security headers and logs -----------------------------------------------------------
# One policy for every answer. The dashboard is one HTML file, one style sheet and one ES
# module; /docs is Swagger UI's bundle and style sheet plus static/docs.js, which starts it
# (FastAPI's page does that with an inline script). No inline script or style anywhere, so
# nothing injected into a page could run; data: images are the icons (the dashboard's favicon,
# Swagger UI's style sheet); API calls, "Try it out" included, go to this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class SecurityHeadersMiddleware:
    """Add the Content-Security-Policy and the other security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = [
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            *((name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
        ]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in added if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


# Query parameters that carry credentials; the service takes keys only in X-API-Key, but a
# client may still send one in the URL (?api_key=...), where the access log would keep it.
_SECRET_PARAMS = frozenset(
    {"api_key", "apikey", "api-key", "x-api-key", "key", "token", "access_token", "password"}
)
_KEY_PREFIX = "emorec_"


def _hide_query(query: str, status: object) -> bool:
    from urllib.parse import parse_qsl

    if not isinstance(status, int) or status >= 400:
        return True  # a rejected request: its query may be anything, a mistyped key included
    pairs = parse_qsl(query, keep_blank_values=True)
    return any(
        name.lower() in _SECRET_PARAMS or _KEY_PREFIX in name or _KEY_PREFIX in value
        for name, value in pairs
    )


class AccessLogQueryFilter(logging.Filter):
    """On uvicorn's access log: the query string of a rejected request (4xx, 5xx) or of one that
    carries a key is replaced by ``?<hidden>``, the path and status stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn logs (client, method, path with query, HTTP version, status).
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, _, query = args[2].partition("?")
            if query and _hide_query(query, args[4]):
                record.args = (*args[:2], f"{path}?<hidden>", *args[3:])
        return True


_ACCESS_LOG_FILTER = AccessLogQueryFilter()


def _filter_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if _ACCESS_LOG_FILTER not in access.filters:
        access.addFilter(_ACCESS_LOG_FILTER)


# ---- the app -----------------------------------------------------------------------------
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
        from emorec.service.jobs import JobQueue, start_embedded_consumer

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
    app.include_router(router)
    # Imported here: routes_jobs imports this module for its dependencies.
    from emorec.service.routes_jobs import router as jobs_router

    app.include_router(jobs_router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(EmorecError, _input_error)
    app.add_exception_handler(Exception, _unexpected_error)

    predict_limit = (
        settings.max_texts_per_request * settings.max_chars_per_text * _JSON_BYTES_PER_CHAR
        + _ENVELOPE_BYTES
    )

    def limit(path: str) -> tuple[int, str]:
        if path.startswith("/v1/jobs"):
            return settings.max_upload_bytes + _ENVELOPE_BYTES, "The upload"
        return predict_limit, "The request body"

    app.add_middleware(BodyLimitMiddleware, limit=limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "Content-Type"],
        )
    # Outermost, so that every answer has them, the 413s of BodyLimitMiddleware included.
    app.add_middleware(SecurityHeadersMiddleware)
    _filter_access_log()
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
