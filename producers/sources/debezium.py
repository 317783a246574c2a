"""`ragbus source debezium`: consume a Debezium change topic and publish document events.

Offsets are committed only after the batch's events were confirmed by the broker and its malformed records
reached the source's dead-letter topic (`<prefix>.dlq.source-debezium.v1`): a crash re-reads, never skips.
"""

from __future__ import annotations

import logging
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from producers.sources.debezium_envelope import DebeziumMapping, change_time, document_event, envelope_of
from producers.sources.runtime import SourceRun, running_source
from ragbus import metrics
from ragbus.errors import InvalidMessage
from ragbus.kafka_clients import start_client
from ragbus.kafka_security import kafka_connection
from ragbus.settings import Settings
from schemas.documents import DocumentEvent
from schemas.topics import Lane

log = logging.getLogger(__name__)


async def _handle(run: SourceRun, mapping: DebeziumMapping, records: list[ConsumerRecord[bytes, bytes]]) -> None:
    events: list[DocumentEvent] = []
    snapshot: list[DocumentEvent] = []  # Debezium's snapshot reads (op "r"): bulk work, never ahead of live changes
    newest: float | None = None
    for record in records:
        if record.value is None:
            continue  # a tombstone: the delete event before it already removed the document
        try:
            payload = envelope_of(record.value)
            (snapshot if payload.get("op") == "r" else events).append(document_event(mapping, record.key, payload))
            newest = max(newest or 0.0, change_time(payload) or 0.0) or None
        except InvalidMessage as exc:
            await run.dead_letter(record.key, record.value, exc, origin=record.topic, partition=record.partition,
                                  offset=record.offset)  # fmt: skip
    if newest:
        run.saw_change(newest)
    await run.publish(snapshot, newest, lane=Lane.BULK)
    await run.publish(events, newest)


async def consume_changes(run: SourceRun, topic: str, group: str, mapping: DebeziumMapping) -> None:
    """Consume until SIGTERM, committing each batch once its events are confirmed."""
    settings = run.settings
    consumer = AIOKafkaConsumer(topic, **kafka_connection(settings), group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_records=500)  # fmt: skip
    await start_client(settings, consumer)
    log.info("debezium: consuming %s as group %s", topic, group)
    done: dict[TopicPartition, int] = {}
    try:
        while not run.stopping.is_set():
            batches = await consumer.getmany(timeout_ms=1000)
            for tp, records in batches.items():
                await _handle(run, mapping, records)
                done[tp] = records[-1].offset + 1
                await consumer.commit({tp: done[tp]})
            behind = sum(max(0, (consumer.highwater(tp) or 0) - done.get(tp, 0)) for tp in consumer.assignment())
            metrics.SOURCE_LAG_RECORDS.labels(run.name).set(behind)
    finally:
        await consumer.stop()


async def follow_debezium(settings: Settings, topic: str, mapping: DebeziumMapping, group: str | None = None) -> None:
    """Run the Debezium source until SIGTERM (the entry point of `ragbus source debezium`)."""
    group = group or f"{settings.kafka.topic_prefix}.source-debezium.{topic}"
    started = time.monotonic()
    async with running_source("debezium", settings, f"topic {topic} (group {group})") as run:
        await consume_changes(run, topic, group, mapping)
    log.info("debezium: stopped after %.0fs", time.monotonic() - started)
