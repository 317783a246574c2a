"""Typed dependencies, defined once; the objects are created in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from query_api.service import QueryService
from ragbus.milvus_store import MilvusChunkStore
from ragbus.settings import Settings


@dataclass
class ApiState:
    """Everything the lifespan opened."""

    settings: Settings
    store: MilvusChunkStore
    redis: Redis
    service: QueryService


def get_state(request: Request) -> ApiState:
    """The lifespan's state."""
    state: ApiState = request.app.state.ragbus
    return state


StateDep = Annotated[ApiState, Depends(get_state)]
