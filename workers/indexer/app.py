"""Wiring of the indexer worker: `ragbus worker indexer`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream

from ragbus.embedding import model_dimension
from ragbus.kafka_clients import KafkaEventProducer
from ragbus.milvus_store import MilvusChunkStore
from ragbus.redis_store import IndexGeneration, KeySpace, open_redis
from ragbus.settings import Settings
from schemas.topics import Topics
from workers.indexer.handlers import IndexerHandler
from workers.runtime import build_stage_app


@asynccontextmanager
async def open_indexer(settings: Settings, producer: KafkaEventProducer) -> AsyncIterator[IndexerHandler]:
    """The handler with Milvus (collection and alias ensured) and Redis connected."""
    dim = await asyncio.to_thread(model_dimension, settings.embedding)
    store = await asyncio.to_thread(MilvusChunkStore, settings.milvus, settings.milvus_uri)
    redis = open_redis(settings.redis)
    try:
        await asyncio.to_thread(store.ensure_alias, settings.milvus.initial_collection, dim)
        generation = IndexGeneration(redis, KeySpace(settings.redis.namespace), settings.milvus.alias)
        yield IndexerHandler(store, generation, producer, Topics(settings.kafka.topic_prefix), dim)
    finally:
        await redis.aclose()
        store.close()


def create_app(settings: Settings) -> FastStream:
    """The indexer's FastStream app."""
    return build_stage_app("indexer", Topics(settings.kafka.topic_prefix).embedded, settings, open_indexer)
