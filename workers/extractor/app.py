"""Wiring of the extractor worker: `ragbus worker extractor`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from faststream import FastStream

from ragbus import metrics
from ragbus.kafka_clients import KafkaEventProducer
from ragbus.object_store import S3ObjectStore
from ragbus.pipelines import PipelineContext
from ragbus.redis_store import KeySpace, open_redis
from workers.extractor.batches import BatchExtractor
from workers.extractor.cache import ExtractionCache
from workers.extractor.extraction import DocumentExtractor
from workers.extractor.handlers import ExtractorHandler
from workers.runtime import build_stage_app

OUTCOMES = ("extracted", "cache_hit", "inline", "delete", "superseded")


@asynccontextmanager
async def open_extractor(pipeline: PipelineContext, producer: KafkaEventProducer) -> AsyncIterator[ExtractorHandler]:
    """The handler with its object store (none when RAGBUS_OBJECTS_URL is unset: inline originals only) and Redis
    (the extraction cache; connected on first use: a batch of plain-text upserts never needs it)."""
    settings = pipeline.settings
    concurrency = settings.extract.concurrency
    store = S3ObjectStore(settings.objects, connections=concurrency + 1) if settings.objects.configured else None
    for outcome in OUTCOMES:
        metrics.EXTRACTIONS.labels(outcome)
    extractor = BatchExtractor(DocumentExtractor(store, settings.extract.max_bytes), concurrency)
    redis = open_redis(settings.redis)
    cache = ExtractionCache(redis, KeySpace(settings.redis.namespace), settings.redis.extraction_ttl_s)
    try:
        if store is not None:
            await asyncio.to_thread(store.ensure_bucket)
        yield ExtractorHandler(extractor, cache, producer, pipeline.names.routes("extractor"))
    finally:
        extractor.close()
        await redis.aclose()
        if store is not None:
            store.close()


def create_app(pipeline: PipelineContext) -> FastStream:
    """The extractor's FastStream app."""
    return build_stage_app("extractor", pipeline, open_extractor)
