"""The API's errors: a request refused because of the caller (a ClientError, with its HTTP status and a stable
code), and how every error leaves the API: as JSON with a stable code, never a stack trace.

Errors about credentials and scopes are in query_api.security.errors (ClientErrors too).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from query_api import metrics
from ragbus.errors import InputError, RagbusError, TransientError

log = logging.getLogger(__name__)
_HTTP_CODES = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type"}


class ClientError(RagbusError):
    """A request refused because of the caller; `status` is the HTTP status, `headers` go with it."""

    code = "client_error"
    status = 400
    metric_type = "client"

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers."""
        return {}


class InvalidRequest(ClientError):
    """A request that fails a check the body's schema cannot express."""

    code = "invalid_request"
    status = 422
    metric_type = "validation"


class BodyTooLarge(ClientError):
    """A request body over RAGBUS_API_MAX_BODY_BYTES, refused before it is parsed."""

    code = "body_too_large"
    status = 413
    metric_type = "too_large"


class DocumentTooLong(ClientError):
    """A document over RAGBUS_CHUNK_MAX_DOCUMENT_CHARS."""

    code = "document_too_long"
    status = 413
    metric_type = "too_large"


class NotFound(ClientError):
    """Something the caller's tenant does not have (another tenant's things are 'not found' too)."""

    code = "not_found"
    status = 404
    metric_type = "not_found"


class Conflict(ClientError):
    """The request repeats something that may happen only once."""

    code = "conflict"
    status = 409
    metric_type = "conflict"


class RateLimited(ClientError):
    """Too many requests with one credential in the current window."""

    code = "rate_limited"
    status = 429
    metric_type = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)

    @property
    def headers(self) -> dict[str, str]:
        """When the caller may try again."""
        return {"Retry-After": str(self.retry_after_s)}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map validation, ragbus and unexpected errors to JSON responses."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.ERRORS.labels("validation").inc()
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _error(422, "invalid_request", details)

    @app.exception_handler(TransientError)
    async def unavailable(_: Request, exc: TransientError) -> JSONResponse:
        metrics.ERRORS.labels("unavailable").inc()
        log.warning("dependency unavailable: %s", exc)
        code = "unavailable" if exc.code == TransientError.code else exc.code  # e.g. search_unavailable
        retry_after = str(int(getattr(exc, "retry_after_s", 5)))
        return _error(503, code, "a backing service is unavailable; retry shortly", {"Retry-After": retry_after})

    @app.exception_handler(InputError)
    async def bad_input(_: Request, exc: InputError) -> JSONResponse:
        metrics.ERRORS.labels("input").inc()
        return _error(400, exc.code, str(exc))

    @app.exception_handler(ClientError)
    async def refused(_: Request, exc: ClientError) -> JSONResponse:
        metrics.ERRORS.labels(exc.metric_type).inc()
        if exc.status in (401, 403, 429):
            log.info("refused (%s): %s", exc.code, exc)
        return _error(exc.status, exc.code, str(exc), exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals (unknown path, wrong method, a body that is not UTF-8) in the same format.
        metrics.ERRORS.labels("http").inc()
        code = _HTTP_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error")
        return _error(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RagbusError)
    async def ragbus_error(_: Request, exc: RagbusError) -> JSONResponse:
        metrics.ERRORS.labels("internal").inc()
        log.error("request failed: %s", exc)
        return _error(500, exc.code, "the request failed")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        metrics.ERRORS.labels("internal").inc()
        log.exception("unexpected error")
        return _error(500, "internal_error", "the request failed")
