"""A small OpenAI-protocol chat-completions server the tests control (a real HTTP server on a spare port).

It can answer, fail with a status (always, or for the next N calls), be slow (past the client's timeout), and
stream its reply as Server-Sent Events token by token, optionally breaking the stream off midway.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ragbus.stack.process import free_port


@dataclass
class FakeLLM:
    """Answers with `reply`, or fails with `status` when set; records every request body."""

    reply: str = "The koala eats eucalyptus leaves [1]."
    status: int | None = None
    # Statuses for the next calls, in order, before behaving normally again.
    fail_next: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    stream_delay_s: float = 0.0
    break_stream_after: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        """Back to answering normally, with no recorded requests."""
        self.status, self.fail_next, self.delay_s, self.stream_delay_s = None, [], 0.0, 0.0
        self.break_stream_after = None
        self.requests.clear()

    def tokens(self) -> list[str]:
        """The reply cut the way it is streamed (each piece keeps its trailing space)."""
        words = self.reply.split(" ")
        return [w + " " for w in words[:-1]] + [words[-1]]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            status = self.fail_next.pop(0) if self.fail_next else self.status
            if status is not None:
                return JSONResponse({"error": {"message": "injected failure"}}, status_code=status)
            if body.get("stream"):
                return StreamingResponse(self._stream(body), media_type="text/event-stream")
            return JSONResponse(
                {
                    "id": "cmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "test"),
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": self.reply}}
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )

        return app

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        for n, token in enumerate(self.tokens()):
            if self.break_stream_after is not None and n >= self.break_stream_after:
                raise RuntimeError("injected stream break")  # uvicorn drops the connection mid-body
            chunk = {
                "id": "cmpl-test",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "test"),
                "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}],
            }
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            if self.stream_delay_s:
                await asyncio.sleep(self.stream_delay_s)
        yield b"data: [DONE]\n\n"

    def serve(self) -> uvicorn.Server:
        server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="critical"))
        threading.Thread(target=server.run, daemon=True).start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return server
