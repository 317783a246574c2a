"""Server-Sent Events of a streamed answer: `citations`, then `delta`s in order, then `done` (or `error`).

A `reset` event means the deltas sent so far are void (the LLM failed mid-answer) and an extractive answer
follows; `done` then says degraded=true.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import orjson

from query_api.models import Citation

MEDIA_TYPE = "text/event-stream"
_PIECES = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class StreamEvent:
    """One SSE event."""

    event: str
    data: dict[str, object] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The event on the wire."""
        return b"event: " + self.event.encode() + b"\ndata: " + orjson.dumps(self.data) + b"\n\n"


def citations_event(citations: list[Citation]) -> StreamEvent:
    """First event: what the answer may cite ([n] is citations[n-1])."""
    return StreamEvent("citations", {"citations": [c.model_dump() for c in citations]})


def delta_event(text: str) -> StreamEvent:
    """A piece of the answer, in order."""
    return StreamEvent("delta", {"text": text})


def done_event(*, cached: bool, degraded: bool, took_ms: float) -> StreamEvent:
    """Last event of a complete answer."""
    return StreamEvent("done", {"cached": cached, "degraded": degraded, "took_ms": took_ms})


def word_deltas(text: str) -> list[str]:
    """A finished answer cut into word-sized deltas whose concatenation is exactly `text`."""
    return _PIECES.findall(text)


def deltas_of(text: str) -> Iterable[StreamEvent]:
    """A finished answer (extractive or cached) as delta events."""
    return (delta_event(piece) for piece in word_deltas(text))


async def encode_events(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    """The byte stream of a StreamingResponse."""
    async for event in events:
        yield event.encode()
