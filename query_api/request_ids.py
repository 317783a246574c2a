"""X-Request-ID: taken from the caller or made up, echoed back, and on every log line of the request."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from ragbus.logging_setup import correlated

HEADER = "X-Request-ID"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def install_request_ids(app: FastAPI) -> None:
    """Add the middleware."""

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        given = request.headers.get(HEADER, "")
        # A caller's id is kept only if it is a plain token (it ends up in logs).
        rid = given if _ACCEPTABLE.match(given) else uuid.uuid4().hex
        with correlated(rid):
            response = await call_next(request)
        response.headers[HEADER] = rid
        return response
