"""Wiring of the embedder worker: `ragbus worker embedder`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream

from ragbus.embedding import SentenceEmbedder
from ragbus.heap import freeze_startup_objects
from ragbus.kafka_clients import KafkaEventProducer
from ragbus.pipelines import PipelineContext
from ragbus.redis_store import KeySpace, RedisEmbeddingCache, open_redis
from workers.embedder.handlers import EmbedderHandler
from workers.runtime import build_stage_app


@asynccontextmanager
async def open_embedder(pipeline: PipelineContext, producer: KafkaEventProducer) -> AsyncIterator[EmbedderHandler]:
    """The handler with the model loaded and Redis connected."""
    settings = pipeline.settings
    embedder = await asyncio.to_thread(SentenceEmbedder(settings.embedding).load)
    redis = open_redis(settings.redis)
    try:
        cache = RedisEmbeddingCache(
            redis, KeySpace(settings.redis.namespace), embedder.model_name, settings.redis.embedding_ttl_s
        )
        handler = EmbedderHandler(embedder, cache, producer, pipeline.names.routes("embedder"))
        freeze_startup_objects()
        yield handler
    finally:
        await redis.aclose()
        embedder.close()


def create_app(pipeline: PipelineContext) -> FastStream:
    """The embedder's FastStream app."""
    return build_stage_app("embedder", pipeline, open_embedder)
