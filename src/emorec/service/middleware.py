"""What wraps every request: the body size limit, the security headers, the access-log filter,
and the exception handlers that make every error a ``{"detail": ...}`` with a plain sentence.
Unexpected errors are logged here and never shown to the client."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emorec.errors import EmorecError

if TYPE_CHECKING:
    from emorec.service.settings import ServiceSettings

logger = logging.getLogger("emorec.service")

# JSON may escape one character as up to 6 bytes (\uXXXX, or 12 for a surrogate pair); the
# body limit of /v1/predict leaves room for that plus the envelope.
_JSON_BYTES_PER_CHAR = 12
_ENVELOPE_BYTES = 64 * 1024
INTERNAL_ERROR = "The server hit an unexpected error; it has been logged. Please try again later."


# ---- errors ------------------------------------------------------------------------------
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


def add_exception_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"detail": "<one sentence>"}`` (validation errors add ``errors``)."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(EmorecError, _input_error)
    app.add_exception_handler(Exception, _unexpected_error)


# ---- body size limit -----------------------------------------------------------------------
def body_limits(settings: ServiceSettings) -> Callable[[str], tuple[int, str]]:
    """The body limit of a path, and what to call the body in the 413: uploads to /v1/jobs
    may be ``max_upload_bytes``, every other body as much as the largest predict request."""
    predict_limit = (
        settings.max_texts_per_request * settings.max_chars_per_text * _JSON_BYTES_PER_CHAR
        + _ENVELOPE_BYTES
    )
    upload_limit = settings.max_upload_bytes + _ENVELOPE_BYTES

    def limit(path: str) -> tuple[int, str]:
        if path.startswith("/v1/jobs"):
            return upload_limit, "The upload"
        return predict_limit, "The request body"

    return limit


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


def filter_access_log() -> None:
    """Install :class:`AccessLogQueryFilter` on uvicorn's access log (once)."""
    access = logging.getLogger("uvicorn.access")
    if _ACCESS_LOG_FILTER not in access.filters:
        access.addFilter(_ACCESS_LOG_FILTER)
