"""publish_documents and DocumentPublisher: size-checked, keyed, delivery-confirmed publishing of document events."""

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


class DocumentPublisher:
    """A long-lived publisher for sources that stream: `send` returns once the broker acknowledged every event."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics(settings.kafka.topic_prefix)
        self.producer = KafkaEventProducer(settings)

    async def __aenter__(self) -> DocumentPublisher:
        await ensure_topics(self.settings, self.topics.all(), compacted=self.topics.compacted())
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, events: Sequence[DocumentEvent], on_progress: Callable[[int, int], None] | None = None) -> int:
        """Publish `events` in order (size-checked before anything is sent); returns the bytes sent."""
        messages = [to_message(e, self.topics.documents, self.settings.kafka.max_message_bytes) for e in events]
        sent = 0
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            await self.producer.send_all(batch)
            sent += len(batch)
            if on_progress:
                on_progress(sent, sum(len(m.value or b"") for m in batch))
        return sum(len(m.value or b"") for m in messages)


async def publish_documents(
    settings: Settings,
    events: Sequence[DocumentEvent],
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> PublishReport:
    """Publish `events` in order; returns once the broker acknowledged every one (acks=all)."""
    topics = Topics(settings.kafka.topic_prefix)
    for event in events:  # every event is size-checked before anything is sent
        to_message(event, topics.documents, settings.kafka.max_message_bytes)
    async with DocumentPublisher(settings) as publisher:
        sent_bytes = await publisher.send(events, on_progress)
    return PublishReport(
        topic=topics.documents,
        events=len(events),
        bytes=sent_bytes,
        versions={(e.tenant, e.doc_id): e.version for e in events},
    )
