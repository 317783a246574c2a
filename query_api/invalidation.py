"""Consumer of the cache-invalidation topic, running inside the API: deletes the cached answers a change stales.

The consumer group is `{prefix}.api-cache`: the cache is shared, so several API processes share the work and each
event is applied once. Offsets are committed only after Redis applied the batch (a Redis outage pauses the
consumer, it never skips an event); applying an event twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from query_api import metrics
from query_api.cache import QueryCache
from ragbus.background import stop_task
from ragbus.errors import TransientError
from ragbus.freshness_window import FreshnessWindow
from ragbus.kafka_clients import start_client
from ragbus.kafka_security import kafka_connection
from ragbus.redis_store import REDIS_DOWN
from ragbus.settings import Settings
from schemas.codec import decode
from schemas.documents import DocumentOp
from schemas.errors import ContractError
from schemas.invalidation import CacheInvalidation
from schemas.topics import Topics

log = logging.getLogger(__name__)
RETRY_MAX_S = 5.0


def consumer_group(settings: Settings) -> str:
    """The API processes' shared consumer group."""
    return f"{settings.kafka.topic_prefix}.api-cache"


class CacheInvalidationConsumer:
    """Runs as a background task between `start` and `stop`."""

    def __init__(self, settings: Settings, cache: QueryCache) -> None:
        self.settings, self.cache = settings, cache
        self.freshness = FreshnessWindow(cache.redis, settings.redis.namespace)
        self.applied = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        """Start consuming in the background (joining the group takes a moment; the API does not wait)."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="cache-invalidation")

    async def stop(self) -> None:
        """Stop consuming; the batch in flight is abandoned uncommitted and redelivered to another process."""
        self._stopping = True  # a cancellation swallowed inside aiokafka (ragbus.background) still ends the loops
        if self._task is not None:
            await stop_task(self._task)
            self._task = None

    async def _run(self) -> None:
        delay = 0.5
        while not self._stopping:
            consumer = AIOKafkaConsumer(
                Topics(self.settings.kafka.topic_prefix).cache_invalidation,
                **kafka_connection(self.settings),
                group_id=consumer_group(self.settings),
                enable_auto_commit=False,
                fetch_max_wait_ms=self.settings.kafka.fetch_max_wait_ms,
                # A new group starts from the beginning: applying an old event again only drops answers.
                auto_offset_reset="earliest",
            )
            try:
                await start_client(self.settings, consumer)
                log.info("cache invalidation: consuming")
                delay = 0.5
                await self._consume(consumer)
            except (KafkaError, TransientError, OSError) as exc:
                log.warning("cache invalidation paused %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
            except Exception:  # never let the task die silently: the cache would go stale unnoticed
                log.exception("cache invalidation failed; restarting in %.1fs", RETRY_MAX_S)
                await asyncio.sleep(RETRY_MAX_S)
            finally:
                await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping:
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batches.values():
                for record in records:
                    await self._apply(record.value)
            if batches:
                await consumer.commit()
            metrics.CACHE_INVALIDATION_LAG.set(await _lag(consumer))

    async def _apply(self, value: bytes | None) -> None:
        try:
            event = decode(value, CacheInvalidation)
        except ContractError as exc:
            log.error("cache invalidation: skipping an undecodable event: %s", exc)
            return
        delay = 0.2
        while True:
            try:
                await self.cache.invalidate(event.tenant, event.doc_id, upsert=event.op is DocumentOp.UPSERT)
                break
            except TransientError as exc:  # Redis down: hold the batch, retry, never skip
                log.warning("cache invalidation of %r waits %.1fs: %s", event.doc_id, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        metrics.CACHE_INVALIDATIONS.labels(event.op.value).inc()
        try:  # the status view's freshness figures: worth a warning when Redis drops it, never a held batch
            await self.freshness.record(event.tenant, event.event_id, event.produced_at, event.indexed_at)
        except REDIS_DOWN as exc:
            log.warning("freshness of %r not recorded: %s", event.doc_id, exc)
        self.applied += 1


async def _lag(consumer: AIOKafkaConsumer) -> int:
    """Events on this process's partitions not applied yet: how long a changed document may still be served."""
    lag = 0
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is not None:
            lag += max(0, highwater - await consumer.position(tp))
    return lag
