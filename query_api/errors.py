"""Every error leaves the API as JSON with a stable code: never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from query_api import metrics
from ragbus.errors import InputError, RagbusError, TransientError

log = logging.getLogger(__name__)


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
        return _error(503, "unavailable", "a backing service is unavailable; retry shortly", {"Retry-After": "5"})

    @app.exception_handler(InputError)
    async def bad_input(_: Request, exc: InputError) -> JSONResponse:
        metrics.ERRORS.labels("input").inc()
        return _error(400, exc.code, str(exc))

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
