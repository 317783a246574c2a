"""The query API: `create_app(settings)`; clients open and close in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from query_api.cache import QueryCache
from query_api.deps import ApiState
from query_api.errors import install_error_handlers
from query_api.generation import LLMAnswerer
from query_api.request_ids import install_request_ids
from query_api.routes import health, query
from query_api.service import QueryService
from ragbus import __version__
from ragbus.embedding import ModelTokenizer, SentenceEmbedder
from ragbus.milvus_store import MilvusChunkStore
from ragbus.redis_store import KeySpace, open_redis
from ragbus.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI application."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        embedder = await asyncio.to_thread(SentenceEmbedder(settings.embedding).load)
        store = await asyncio.to_thread(MilvusChunkStore, settings.milvus, settings.milvus_uri)
        redis = open_redis(settings.redis)
        llm = (
            LLMAnswerer(settings.llm, ModelTokenizer.from_settings(settings.embedding))
            if settings.llm.base_url
            else None
        )
        cache = QueryCache(
            redis, KeySpace(settings.redis.namespace), settings.milvus.alias, settings.redis.query_cache_ttl_s
        )
        service = QueryService(settings.api, embedder, store, cache, llm)
        app.state.ragbus = ApiState(settings=settings, store=store, redis=redis, service=service)
        try:
            yield
        finally:
            if llm:
                await llm.close()
            await redis.aclose()
            store.close()

    app = FastAPI(
        title="ragbus query API",
        version=__version__,
        description="Grounded answers with citations from documents indexed through Kafka.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_request_ids(app)
    app.include_router(health.router)
    app.include_router(query.router)
    app.mount("/metrics", make_asgi_app())
    return app
