"""An answer as it is produced, in parts: what it may cite, its text in pieces, and finally the whole answer.

One answer pipeline (QueryService) yields these parts; a whole answer keeps only the last one, `Answered`, and a
streamed answer sends each part as it comes (query_api.streaming). An `Answered` with no `Citations` before it
(a cached, extractive or retrieval-only answer) is one that was finished before anything was sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from query_api.models import Citation, QueryResponse
from ragbus.errors import RagbusError


@dataclass(frozen=True)
class Citations:
    """What the answer's markers refer to: [n] is citations[n-1]. Comes before the answer's text."""

    citations: list[Citation]


@dataclass(frozen=True)
class Delta:
    """The next piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class Reset:
    """The pieces so far are void (the LLM failed mid-answer); the pieces of another answer follow."""

    reason: str


@dataclass(frozen=True)
class Answered:
    """The whole answer, always the last part; its `cached` and `degraded` say where it came from."""

    response: QueryResponse


AnswerPart = Citations | Delta | Reset | Answered


async def finished(response: QueryResponse) -> AsyncIterator[AnswerPart]:
    """An answer that was finished before anything was sent, as parts."""
    yield Answered(response)


async def whole_answer(parts: AsyncIterator[AnswerPart]) -> QueryResponse:
    """The answer the parts end with (they are consumed to the end)."""
    answer: QueryResponse | None = None
    async for part in parts:
        if isinstance(part, Answered):
            answer = part.response
    if answer is None:
        raise RagbusError("the answer's parts ended without the answer")
    return answer
