"""Read what a source published: the records of topics (by default both documents topics, live and bulk lanes)
past a remembered position."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from ragbus.kafka_clients import end_offsets, ensure_topics, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.settings import Settings
from schemas.codec import decode
from schemas.documents import DocumentEvent
from schemas.topics import Topics


async def _ends(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    await ensure_topics(settings, topics)
    consumer = AIOKafkaConsumer(**kafka_connection(settings), enable_auto_commit=False)
    await start_client(settings, consumer)
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or [])]
        return await end_offsets(consumer, tps)
    finally:
        await consumer.stop()


async def _read(settings: Settings, since: dict[TopicPartition, int]) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(**kafka_connection(settings), enable_auto_commit=False)
    await start_client(settings, consumer)
    try:
        ends = await end_offsets(consumer, list(since))
        records: list[ConsumerRecord[bytes, bytes]] = []
        for tp, start in since.items():
            consumer.seek(tp, start)
            while await consumer.position(tp) < ends[tp]:
                batch = (await consumer.getmany(tp, timeout_ms=2000)).get(tp, [])
                records += [r for r in batch if r.offset < ends[tp]]
        return sorted(records, key=lambda r: r.timestamp)
    finally:
        await consumer.stop()


class TopicReader:
    """Remembers the end of topics (one, or both documents topics); `records()` are those written after it."""

    def __init__(self, settings: Settings, topic: str | None = None) -> None:
        self.settings = settings
        self.topics = [topic] if topic else Topics(settings.kafka.topic_prefix).document_topics()
        self.since = asyncio.run(_ends(settings, self.topics))

    def records(self) -> list[ConsumerRecord[bytes, bytes]]:
        """Every record written since construction."""
        return asyncio.run(_read(self.settings, self.since))

    def events(self) -> list[DocumentEvent]:
        """Every document event written since construction."""
        return [decode(r.value, DocumentEvent) for r in self.records()]

    def wait_events(self, count: int, timeout_s: float = 60) -> list[DocumentEvent]:
        """Events since construction, once there are at least `count` (or the timeout passed)."""
        deadline = time.monotonic() + timeout_s
        while True:
            events = self.events()
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.3)
