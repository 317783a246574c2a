"""Opens and closes everything answering needs: replicas, cache, single flight, LLM providers, invalidation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis

from query_api.cache import CacheKeys, QueryCache
from query_api.generation import LLMAnswerer
from query_api.invalidation import CacheInvalidationConsumer
from query_api.retrieval import ReplicatedRetriever
from query_api.service import QueryService
from query_api.single_flight import SingleFlight
from ragbus.embedding import ModelTokenizer, SentenceEmbedder
from ragbus.redis_store import KeySpace
from ragbus.settings import Settings
from ragbus.write_marks import WriteMarks

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_answering(settings: Settings, embedder: SentenceEmbedder, redis: Redis) -> AsyncIterator[QueryService]:
    """A QueryService for the app's lifespan; the cache-invalidation consumer runs while it is open."""
    retriever = ReplicatedRetriever.from_settings(settings.milvus, settings.milvus_read_uris, settings.api)
    # Without Kafka no invalidation arrives, and a cached answer could outlive its documents: no cache then.
    ttl_s = settings.redis.query_cache_ttl_s if settings.kafka.bootstrap else 0
    if not ttl_s and settings.redis.query_cache_ttl_s:
        log.warning("query cache off: RAGBUS_KAFKA_BOOTSTRAP is unset, so cache invalidations cannot arrive")
    cache = QueryCache(redis, CacheKeys(settings.redis.namespace, settings.milvus.alias), ttl_s)
    llm = LLMAnswerer(settings.llm, ModelTokenizer.from_settings(settings.embedding)) if settings.llm.base_url else None
    invalidation = CacheInvalidationConsumer(settings, cache)
    # Reading at the indexer's write marks replaces Strong's wait; a weaker level configured stays as it is.
    at_marks = settings.api.read_at_write_marks and settings.milvus.consistency_level == "Strong"
    marks = WriteMarks(redis, KeySpace(settings.redis.namespace)) if at_marks else None
    if cache.enabled:
        invalidation.start()
    try:
        service = QueryService(
            settings=settings.api,
            embedder=embedder,
            retriever=retriever,
            cache=cache,
            flights=SingleFlight(redis, settings.api.single_flight_lock_s),
            llm=llm,
            marks=marks,
        )
        try:
            yield service
        finally:
            await service.aclose()
    finally:
        await invalidation.stop()
        if llm:
            await llm.close()
        await retriever.aclose()
