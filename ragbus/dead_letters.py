"""Inspect and replay dead-lettered messages (`ragbus dlq list|replay`)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, read_to_end, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.settings import Settings
from schemas.dead_letter import DeadLetterHeaders, original_event_id
from schemas.topics import Lane, Topics, in_lane

REPLAYED_HEADER = "ragbus.replayed_from"


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message."""

    stage: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: DeadLetterHeaders
    replayed: bool

    @property
    def event_id(self) -> str | None:
        """The event id of the message that was dead-lettered (None for a payload that is not a message)."""
        return original_event_id(self.value)


def replay_group(settings: Settings, stage: str) -> str:
    """Consumer group whose committed offset marks what `replay` already re-published."""
    return f"{settings.kafka.topic_prefix}.dlq-replay.{stage}"


async def _read_all(settings: Settings, stage: str, group: str | None) -> tuple[AIOKafkaConsumer, list[DeadLetter]]:
    consumer = AIOKafkaConsumer(
        **kafka_connection(settings), group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await start_client(settings, consumer)
    try:
        return consumer, await _read_letters(consumer, settings, stage)
    except BaseException:
        await consumer.stop()
        raise


async def _read_letters(consumer: AIOKafkaConsumer, settings: Settings, stage: str) -> list[DeadLetter]:
    topic = Topics(settings.kafka.topic_prefix).dead_letter(stage)
    await consumer._client.force_metadata_update()
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    if not tps:
        return []
    replay = AIOKafkaConsumer(**kafka_connection(settings), group_id=replay_group(settings, stage))
    await start_client(settings, replay)
    try:
        done = {tp: (await replay.committed(tp)) or 0 for tp in tps}
    finally:
        await replay.stop()
    return [
        DeadLetter(
            stage=stage,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=DeadLetterHeaders.from_kafka(record.headers),
            replayed=record.offset < done[TopicPartition(record.topic, record.partition)],
        )
        for record in sorted(await read_to_end(consumer, tps), key=lambda r: (r.partition, r.offset))
    ]


async def list_dead_letters(settings: Settings, stage: str) -> list[DeadLetter]:
    """Every message in the stage's dead-letter topic, marked when already replayed."""
    consumer, letters = await _read_all(settings, stage, group=None)
    await consumer.stop()
    return letters


async def replay_dead_letters(settings: Settings, stage: str) -> int:
    """Re-publish every not-yet-replayed dead letter to the topic it came from; returns how many."""
    consumer, letters = await _read_all(settings, stage, group=replay_group(settings, stage))
    try:
        pending = [letter for letter in letters if not letter.replayed]
        if not pending:
            return 0
        async with KafkaEventProducer(settings) as producer:
            await producer.send_all(
                [
                    OutboundMessage(
                        in_lane(letter.reason.topic, Lane.BULK),  # a replay is bulk work: never ahead of live edits
                        letter.key,
                        letter.value,
                        [(REPLAYED_HEADER, f"{stage}:{letter.partition}:{letter.offset}".encode())],
                    )
                    for letter in pending
                ]
            )
        # Committed only after the broker confirmed every re-published message: a crash replays again, never less.
        topic = Topics(settings.kafka.topic_prefix).dead_letter(stage)
        last: dict[TopicPartition, int] = {}
        for letter in pending:
            tp = TopicPartition(topic, letter.partition)
            last[tp] = max(last.get(tp, 0), letter.offset + 1)
        await consumer.commit(last)
        return len(pending)
    finally:
        await consumer.stop()
