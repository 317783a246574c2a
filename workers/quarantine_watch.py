"""QuarantineWatch: the records operators quarantined for this stage, read from the quarantine topic.

`ragbus dlq quarantine` publishes a QuarantineRequest instead of touching the consumer group's offsets, so it is
safe while the group has members: the worker that owns the partition sees the request within
RAGBUS_WORKER_QUARANTINE_POLL_S, dead-letters the record unprocessed (its reason says so) and commits past it
like any other dead letter. Nothing is skipped silently and `ragbus dlq replay` brings the record back after a fix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from ragbus.background import stop_task
from ragbus.errors import InvalidMessage
from ragbus.kafka_clients import start_client
from ragbus.kafka_security import kafka_connection
from ragbus.settings import Settings
from schemas.codec import decode
from schemas.quarantine import QuarantineRequest
from schemas.topics import Topics

log = logging.getLogger(__name__)


class QuarantineWatch:
    """Requests of one stage, by (topic, partition, offset)."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._requests: dict[tuple[str, int, int], QuarantineRequest] = {}

    def request_for(self, record: ConsumerRecord[bytes, bytes]) -> QuarantineRequest | None:
        """The operator's request to quarantine `record`, if there is one."""
        return self._requests.get((record.topic, record.partition, record.offset))

    def add(self, value: bytes | None) -> None:
        """Take one record of the quarantine topic into account."""
        try:
            request = decode(value, QuarantineRequest)
        except InvalidMessage as exc:
            log.warning("ignoring an unreadable quarantine request: %s", exc)
            return
        if request.stage == self.stage:
            self._requests[(request.topic, request.partition, request.offset)] = request
            log.warning(
                "%s: quarantine requested for %s[%d]@%d: %s",
                self.stage, request.topic, request.partition, request.offset, request.reason,
            )  # fmt: skip


async def _tail(consumer: AIOKafkaConsumer, topic: str, watch: QuarantineWatch, poll_s: float) -> None:
    assigned: set[TopicPartition] = set()
    while True:
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            wanted = {TopicPartition(topic, p) for p in partitions}
            if wanted != assigned:
                consumer.assign(sorted(wanted, key=lambda tp: tp.partition))
                for tp in wanted - assigned:
                    await consumer.seek_to_beginning(tp)
                assigned = wanted
            if not assigned:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(poll_s)
                continue
            batches = await consumer.getmany(timeout_ms=int(poll_s * 1000))
            for records in batches.values():
                for record in records:
                    watch.add(record.value)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Kafka down: the stage is in backpressure anyway; keep trying
            log.warning("reading quarantine requests failed (%s); retrying", exc)
            await asyncio.sleep(poll_s)


@asynccontextmanager
async def quarantine_watch(settings: Settings, stage: str) -> AsyncIterator[QuarantineWatch]:
    """A QuarantineWatch kept up to date in the background while the block runs."""
    topic = Topics(settings.kafka.topic_prefix).quarantine
    watch = QuarantineWatch(stage)
    consumer = AIOKafkaConsumer(**kafka_connection(settings), group_id=None, enable_auto_commit=False)
    await start_client(settings, consumer)
    task = asyncio.create_task(_tail(consumer, topic, watch, settings.worker.quarantine_poll_s))
    try:
        yield watch
    finally:
        await stop_task(task)
        await consumer.stop()
