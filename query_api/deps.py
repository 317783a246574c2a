"""Typed dependencies, defined once; the objects are created in the app's lifespan.

Every dependency is `async def`, even one that only reads app.state: FastAPI runs a plain `def` dependency in
its thread pool, and that hop cost more than the rest of a cached answer's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from query_api.service import QueryService
from ragbus.document_publisher import DocumentPublisher
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings


@dataclass
class ApiState:
    """Everything the lifespan opened."""

    settings: Settings
    store: MilvusChunkStore
    redis: Redis
    service: QueryService


async def get_state(request: Request) -> ApiState:
    """The lifespan's state."""
    state: ApiState = request.app.state.ragbus
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_publisher(request: Request) -> DocumentPublisher:
    """The lifespan's document publisher (its producer starts on first use)."""
    publisher: DocumentPublisher = request.app.state.documents
    return publisher


PublisherDep = Annotated[DocumentPublisher, Depends(get_publisher)]
