"""publish_documents: size-checked, keyed, delivery-confirmed publishing of document events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragbus.errors import InputError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics
from ragbus.logging_setup import CORRELATION_HEADER, correlation_id
from ragbus.settings import Settings
from schemas.codec import encode
from schemas.documents import DocumentEvent, document_key
from schemas.topics import Topics

BATCH = 256


@dataclass(frozen=True)
class PublishReport:
    """What the broker confirmed."""

    topic: str
    events: int
    bytes: int
    versions: dict[tuple[str, str], int]


def to_message(event: DocumentEvent, topic: str, max_bytes: int) -> OutboundMessage:
    """The Kafka record of an event; InputError (before anything is sent) when it is too large."""
    value = encode(event)
    if len(value) > max_bytes:
        raise InputError(
            f"document {event.doc_id!r} ({event.source or 'no source'}) is {len(value)} bytes serialized, over "
            f"RAGBUS_KAFKA_MAX_MESSAGE_BYTES={max_bytes}: split it or raise the limit"
        )
    headers = [
        ("ragbus.event_id", event.event_id.encode()),
        (CORRELATION_HEADER, (correlation_id.get() or event.event_id).encode()),
    ]
    return OutboundMessage(topic, document_key(event.tenant, event.doc_id), value, headers)


async def publish_documents(
    settings: Settings,
    events: Sequence[DocumentEvent],
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> PublishReport:
    """Publish `events` in order; returns once the broker acknowledged every one (acks=all)."""
    topics = Topics(settings.kafka.topic_prefix)
    messages = [to_message(e, topics.documents, settings.kafka.max_message_bytes) for e in events]
    await ensure_topics(settings, topics.all(), compacted=topics.compacted())
    sent = 0
    async with KafkaEventProducer(settings) as producer:
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            await producer.send_all(batch)
            sent += len(batch)
            if on_progress:
                on_progress(sent, sum(len(m.value or b"") for m in batch))
    return PublishReport(
        topic=topics.documents,
        events=len(messages),
        bytes=sum(len(m.value or b"") for m in messages),
        versions={(e.tenant, e.doc_id): e.version for e in events},
    )
