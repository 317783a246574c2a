"""Server-Sent Events of a streamed answer: `citations`, then `delta`s in order, then `done` (or `error`).

A `reset` event means the deltas sent so far are void (the LLM failed mid-answer) and an extractive answer
follows; `done` then says degraded=true.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import orjson

from query_api.answer_parts import AnswerPart, Citations, Delta, Reset
from query_api.models import Citation, QueryResponse

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


async def answer_events(
    parts: AsyncIterator[AnswerPart], finish: Callable[[QueryResponse], QueryResponse]
) -> AsyncIterator[StreamEvent]:
    """The events of an answer's parts; `finish` counts the answer and stamps its time, for the `done` event.

    An answer that was finished before anything was sent (no `Citations` part before it) is sent as its citations
    and word-sized deltas.
    """
    sent = False
    async for part in parts:
        if isinstance(part, Citations):
            sent = True
            yield citations_event(part.citations)
        elif isinstance(part, Delta):
            yield delta_event(part.text)
        elif isinstance(part, Reset):
            yield StreamEvent("reset", {"reason": part.reason})
        else:
            if not sent:
                yield citations_event(part.response.citations)
                for event in deltas_of(part.response.answer):
                    yield event
            done = finish(part.response)
            yield done_event(cached=done.cached, degraded=done.degraded, took_ms=done.took_ms)


async def encode_events(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    """The byte stream of a StreamingResponse."""
    async for event in events:
        yield event.encode()
