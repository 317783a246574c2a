"""Wiring of the indexer worker: `ragbus worker indexer`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream

from ragbus.embedding import model_dimension
from ragbus.kafka_clients import KafkaEventProducer
from ragbus.milvus.store import MilvusChunkStore
from ragbus.pipelines import PipelineContext
from ragbus.redis_store import IndexGeneration, KeySpace, open_redis
from ragbus.write_marks import WriteMarks
from schemas.topics import Topics
from workers.indexer.handlers import IndexerHandler
from workers.indexer.sealer import sealing
from workers.runtime import build_stage_app


@asynccontextmanager
async def open_indexer(pipeline: PipelineContext, producer: KafkaEventProducer) -> AsyncIterator[IndexerHandler]:
    """The handler with Milvus (its pipeline's collection, and the alias, ensured) and Redis connected."""
    settings = pipeline.settings
    dim = await asyncio.to_thread(model_dimension, settings.embedding)
    store = await asyncio.to_thread(MilvusChunkStore, settings.milvus, settings.milvus_uri)
    redis = open_redis(settings.redis)
    try:
        # The first pipeline's collection is what the alias points at when it is first created.
        await asyncio.to_thread(store.ensure_alias, settings.milvus.initial_collection, dim)
        await asyncio.to_thread(store.ensure_collection, pipeline.collection, dim)
        keys = KeySpace(settings.redis.namespace)
        generation = IndexGeneration(redis, keys, settings.milvus.alias)
        topics = Topics(settings.kafka.topic_prefix)
        async with sealing(store, pipeline.collection, settings.milvus.flush_interval_s) as sealer:
            yield IndexerHandler(
                store,
                generation,
                producer,
                topics,
                WriteMarks(redis, keys),
                dim=dim,
                collection=pipeline.collection,
                sealer=sealer,
            )
    finally:
        await redis.aclose()
        store.close()


def create_app(pipeline: PipelineContext) -> FastStream:
    """The indexer's FastStream app."""
    return build_stage_app("indexer", pipeline, open_indexer)
