"""Request bodies over RAGBUS_API_MAX_BODY_BYTES are refused (413) before anything parses them."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from query_api import metrics
from query_api.errors import BodyTooLarge


class BodyLimitMiddleware:
    """Checks Content-Length up front; a body without one is read up to the limit before the app sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _refuse(send, self.max_bytes)
            return
        if declared is None:
            # No Content-Length (chunked): read the body here, up to the limit, then hand it on whole.
            buffered = await _read_limited(receive, self.max_bytes)
            if buffered is None:
                await _refuse(send, self.max_bytes)
                return
            receive = _replay(buffered, receive)
        await self.app(scope, receive, send)


async def _read_limited(receive: Receive, max_bytes: int) -> list[Message] | None:
    """Every message of the request body, or None once it grows past `max_bytes`."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # the client went away; the app sees the disconnect
        size += len(message.get("body", b""))
        if size > max_bytes:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _message(max_bytes: int) -> str:
    return f"request body over {max_bytes} bytes (RAGBUS_API_MAX_BODY_BYTES)"


async def _refuse(send: Send, max_bytes: int) -> None:
    metrics.ERRORS.labels(BodyTooLarge.metric_type).inc()
    body = orjson.dumps({"error": {"code": BodyTooLarge.code, "message": _message(max_bytes)}})
    await send(
        {
            "type": "http.response.start",
            "status": BodyTooLarge.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
