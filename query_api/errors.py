"""Every error leaves the API as JSON with a stable code: never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from query_api import metrics
from query_api.security.errors import ClientError
from ragbus.errors import InputError, RagbusError, TransientError

log = logging.getLogger(__name__)
_HTTP_CODES = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed", 415: "unsupported_media_type"}


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
