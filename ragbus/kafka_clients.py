"""Kafka clients built from settings: topic creation and a delivery-confirming producer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, MessageSizeTooLargeError

from ragbus.errors import PermanentError, TransientError
from ragbus.kafka_security import kafka_connection, kafka_start_error
from ragbus.settings import Settings

log = logging.getLogger(__name__)
_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class OutboundMessage:
    """One record to produce."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def _common(settings: Settings) -> dict[str, object]:
    return {**kafka_connection(settings), "request_timeout_ms": settings.kafka.request_timeout_ms}


async def start_client(settings: Settings, client: AIOKafkaConsumer | AIOKafkaAdminClient) -> None:
    """Start an aiokafka consumer or admin client: a refused login or certificate is a ConfigError naming the
    settings, a cluster that is down a TransientError (and the half-started client is closed either way)."""
    try:
        await client.start()
    except (KafkaConnectionError, KeyError, ValueError) as exc:
        with contextlib.suppress(Exception):
            await (client.stop() if isinstance(client, AIOKafkaConsumer) else client.close())
        raise await kafka_start_error(settings, exc) from None


async def ensure_topics(settings: Settings, topics: Sequence[str], *, compacted: Sequence[str] = ()) -> None:
    """Create missing topics (idempotent); `compacted` ones keep only the latest record per key."""
    admin = AIOKafkaAdminClient(**_common(settings))
    try:
        await admin.start()
        new = [
            NewTopic(
                name,
                settings.kafka.partitions,
                settings.kafka.replication_factor,
                topic_configs={"cleanup.policy": "compact"} if name in compacted else {},
            )
            for name in topics
        ]
        response = await admin.create_topics(new)
        for topic, code, message in getattr(response, "topic_errors", []):
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise TransientError(f"cannot create topic {topic}: error {code} {message}")
    except (KafkaConnectionError, KeyError, ValueError) as exc:
        # A refused login surfaces as a KeyError/ValueError of the SCRAM exchange; see kafka_start_error.
        raise await kafka_start_error(settings, exc) from None
    finally:
        await admin.close()


class KafkaEventProducer:
    """acks=all producer whose `send_all` returns only once the broker confirmed every record."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None

    def _build(self, idempotent: bool) -> AIOKafkaProducer:
        kafka = self.settings.kafka
        return AIOKafkaProducer(
            **_common(self.settings),
            acks="all",
            enable_idempotence=idempotent,
            compression_type=None if kafka.compression == "none" else kafka.compression,
            # Room for key, headers and batch framing above the value limit, still under the broker's 1 MiB default.
            max_request_size=kafka.max_message_bytes + 40_000,
            linger_ms=5,
        )

    async def start(self) -> KafkaEventProducer:
        """Connect; with idempotent=auto, fall back to a plain producer where the broker lacks support."""
        mode = self.settings.kafka.idempotent
        for idempotent in [True, False] if mode == "auto" else [mode == "on"]:
            producer = self._build(idempotent)
            # aiokafka logs the refused InitProducerId at ERROR; with idempotent=auto that refusal is expected.
            sender_log = logging.getLogger("aiokafka.producer.sender")
            previous = sender_log.level
            if mode == "auto" and idempotent:
                sender_log.setLevel(logging.CRITICAL)
            try:
                await producer.start()
            except (KafkaConnectionError, KeyError, ValueError) as exc:
                await producer.stop()
                raise await kafka_start_error(self.settings, exc) from None
            except KafkaError as exc:
                await producer.stop()
                if mode == "auto" and idempotent:
                    log.info("broker refused an idempotent producer (%s); using acks=all without it", exc)
                    continue
                raise TransientError(f"Kafka producer failed to start: {exc}") from exc
            finally:
                sender_log.setLevel(previous)
            self._producer = producer
            return self
        raise TransientError("Kafka producer failed to start")

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> KafkaEventProducer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def answers(self) -> bool:
        """Whether a broker answers a metadata request now (a cheap probe; no record is produced)."""
        if self._producer is None:
            return False
        try:
            await self._producer.client.fetch_all_metadata()
        except KafkaError:
            return False
        return True

    async def send_all(self, messages: Sequence[OutboundMessage]) -> None:
        """Produce every message and wait for all broker acknowledgements (raises TransientError if any fails)."""
        if self._producer is None:
            raise RuntimeError("producer not started")
        try:
            futures = [
                await self._producer.send(m.topic, value=m.value, key=m.key, headers=m.headers or None)
                for m in messages
            ]
            await asyncio.gather(*futures)
        except MessageSizeTooLargeError as exc:
            # The record itself is too big: retrying cannot help, so the consumer dead-letters its input.
            raise PermanentError(
                f"an outgoing record exceeds RAGBUS_KAFKA_MAX_MESSAGE_BYTES={self.settings.kafka.max_message_bytes}: "
                f"{exc}",
                code="message_too_large",
            ) from exc
        except KafkaError as exc:
            raise TransientError(f"Kafka did not confirm delivery: {exc}") from exc


async def end_offsets(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Offsets one past the last record of each partition, confirmed by a fetch.

    ListOffsets alone is not enough: the embedded tansu broker answers it with the last *batch's* base offset + 1,
    so a partition whose last batch holds several records looks shorter than it is. The high watermark of a fetch
    from that base offset is right on every broker.
    """
    listed = await consumer.end_offsets(tps)
    consumer.assign(tps)
    filled = [tp for tp in tps if listed[tp] > 0]
    for tp in filled:
        consumer.seek(tp, listed[tp] - 1)
    # One fetch covers every partition: fetching partition after partition cost a round trip each (GET /v1/status
    # took 1.5-1.9 s on an idle broker with a few dozen partitions).
    deadline = time.monotonic() + 2.0
    pending = [tp for tp in filled if consumer.highwater(tp) is None]
    while pending and time.monotonic() < deadline:
        await consumer.getmany(*pending, timeout_ms=200)
        pending = [tp for tp in pending if consumer.highwater(tp) is None]
    return {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in tps}


async def read_to_end(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `tps` from the first one retained to the end as of the call, the partitions read together.

    Each partition is sought to its first offset explicitly: `seek_to_beginning` leaves the offset to a reset that
    `position` waited about 0.5 s for, per partition (the dead letters of GET /v1/status took 1.6 s that way).
    """
    ends = await end_offsets(consumer, tps)  # assigns tps
    begins = await consumer.beginning_offsets(tps)
    pending = {tp for tp in tps if ends[tp] > begins[tp]}
    for tp in pending:
        consumer.seek(tp, begins[tp])
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    while pending:
        if time.monotonic() > deadline:
            raise TransientError(
                f"could not read {sorted({tp.topic for tp in pending})} to the end in {timeout_s:.0f}s"
            )
        batches = await consumer.getmany(*pending, timeout_ms=500)
        for tp, batch in batches.items():
            records.extend(record for record in batch if record.offset < ends[tp])
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
    return records


async def group_offsets(settings: Settings, group: str, topic: str) -> dict[int, tuple[int, int]]:
    """(committed offset of `group`, end offset) of each partition of `topic`, without joining the group."""
    consumer = AIOKafkaConsumer(**kafka_connection(settings), group_id=group, enable_auto_commit=False)
    await start_client(settings, consumer)
    try:
        await consumer._client.force_metadata_update()  # a topic first used here has no metadata yet
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
        committed = {tp: (await consumer.committed(tp)) or 0 for tp in tps}
        ends = await end_offsets(consumer, tps) if tps else {}
        return {tp.partition: (committed[tp], ends[tp]) for tp in tps}
    finally:
        await consumer.stop()


async def consumer_lag(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """Messages of `topic` not yet committed by `group`, per partition (without joining the group)."""
    offsets = await group_offsets(settings, group, topic)
    return {partition: max(0, end - committed) for partition, (committed, end) in offsets.items()}
