"""X-Request-ID: taken from the caller or made up, echoed back, and on every log line of the request.

A plain ASGI middleware rather than `@app.middleware("http")`: that one runs every request in an extra task with
memory streams, a cost a cached answer of a millisecond or two would notice.
"""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragbus.logging_setup import correlated

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode()
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Sets the request's correlation id for its log lines and echoes it in the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for key, value in scope.get("headers") or () if key == _HEADER_KEY), b"")
        # A caller's id is kept only if it is a plain token (it ends up in logs).
        text = given.decode("latin-1")
        rid = text if _ACCEPTABLE.match(text) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers") or () if k.lower() != _HEADER_KEY]
                message = {**message, "headers": [*headers, (_HEADER_KEY, rid.encode())]}
            await send(message)

        with correlated(rid):
            await self.app(scope, receive, send_with_id)


def install_request_ids(app: FastAPI) -> None:
    """Add the middleware."""
    app.add_middleware(RequestIdMiddleware)
