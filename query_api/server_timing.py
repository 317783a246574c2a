"""Server-Timing: where one request's time went (cache lookup, question encoding, search, answer), in its headers.

Browsers' developer tools and `curl -i` show it; `bench.api_ab` reads it to build the query path's timeline. The
stages are timed where they run (`timed("encode")`); a stage that runs twice in one request (a retried search) is
summed. A plain ASGI middleware like query_api.request_ids, for the same reason: no extra task per request.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"server-timing"
_stages: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("server_timing", default=None)


@contextlib.contextmanager
def timed(stage: str) -> Iterator[None]:
    """Add the block's wall time to `stage` of the current request (nothing outside a request)."""
    began = time.perf_counter()
    try:
        yield
    finally:
        if (stages := _stages.get()) is not None:
            stages[stage] = stages.get(stage, 0.0) + time.perf_counter() - began


def header_value(stages: dict[str, float], total_s: float) -> bytes:
    """`name;dur=ms, ...` (RFC: W3C Server Timing), the request's total last."""
    parts = [f"{name};dur={seconds * 1000:.2f}" for name, seconds in stages.items()]
    return ", ".join([*parts, f"total;dur={total_s * 1000:.2f}"]).encode()


class ServerTimingMiddleware:
    """Collects the stages timed during an HTTP request and sends them as its Server-Timing header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stages: dict[str, float] = {}
        token = _stages.set(stages)
        began = time.perf_counter()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = header_value(stages, time.perf_counter() - began)
                message = {**message, "headers": [*(message.get("headers") or ()), (HEADER, value)]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            _stages.reset(token)


def install_server_timing(app: FastAPI) -> None:
    """Add the middleware."""
    app.add_middleware(ServerTimingMiddleware)
