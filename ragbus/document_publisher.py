"""DocumentPublisher: the one way document events reach Kafka (the CLI, the sources and the REST API use it).

Keyed by document id (each document stays ordered on one partition), size-checked before anything is sent, and
confirmed by the broker (acks=all) before `publish` returns. A publish travels in the live lane unless it is bulk:
asked for, or of at least RAGBUS_KAFKA_BULK_THRESHOLD events (docs/architecture.md, lanes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from pydantic import ValidationError

from ragbus.errors import InputError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics
from ragbus.logging_setup import CORRELATION_HEADER, correlation_id
from ragbus.originals import inline_originals, store_originals
from ragbus.settings import Settings
from schemas.codec import encode
from schemas.documents import DocumentEvent, DocumentOp, document_key
from schemas.topics import Lane, Topics

BATCH = 256
DocKey = tuple[str, str]  # (tenant, doc_id)


@dataclass(frozen=True)
class PublishReport:
    """What the broker confirmed: per document, the version and the event id it was published with."""

    topic: str
    events: int
    bytes: int
    versions: dict[DocKey, int]
    event_ids: dict[DocKey, str]


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


def delete_events(
    tenant: str, doc_ids: Sequence[str], versions: Mapping[str, int] | None = None
) -> list[DocumentEvent]:
    """The delete events of these documents, each at its version in `versions` (by default now); InputError naming
    the problem when an id is not a valid id."""
    given = versions or {}
    try:
        return [
            DocumentEvent(op=DocumentOp.DELETE, doc_id=doc_id, tenant=tenant, **_version(given, doc_id))
            for doc_id in doc_ids
        ]
    except ValidationError as exc:
        raise InputError(f"invalid document id: {exc.errors()[0]['msg']}") from None


def _version(versions: Mapping[str, int], doc_id: str) -> dict[str, int]:
    return {"version": versions[doc_id]} if doc_id in versions else {}


class DocumentPublisher:
    """Publishes document events through one producer, started on first use and kept until `close`.

    Starting lazily lets the API come up (and answer queries) while Kafka is down: only publishing fails then.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics(settings.kafka.topic_prefix)
        self._producer: KafkaEventProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> KafkaEventProducer:
        async with self._lock:
            if self._producer is None:
                await ensure_topics(self.settings, self.topics.all(), compacted=self.topics.compacted())
                self._producer = await KafkaEventProducer(self.settings).start()
            return self._producer

    async def publish(
        self,
        events: Sequence[DocumentEvent],
        *,
        on_progress: Callable[[int, int], None] | None = None,
        originals: Mapping[str, bytes] | None = None,
        lane: Lane | None = None,
    ) -> PublishReport:
        """Send `events` in order, in `lane` (by default bulk from RAGBUS_KAFKA_BULK_THRESHOLD events on, else
        live), and return once the broker acknowledged every one.

        InputError (nothing sent) when one is too large; `on_progress(sent, batch_bytes)` after each batch.
        Originals (PDF, HTML, ...) travel inside their events when small, else are stored in object storage first:
        `originals` gives bytes by sha256 (uploads), else each is read from the file its event's `source` names
        (ragbus/originals.py).
        """
        topic = self.topics.documents_in(lane or self.lane_for(len(events)))
        events = await inline_originals(self.settings, events, originals)
        messages = [to_message(e, topic, self.settings.kafka.max_message_bytes) for e in events]
        await store_originals(self.settings, events, originals)
        producer = await self._started()
        sent = 0
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            await producer.send_all(batch)
            sent += len(batch)
            if on_progress:
                on_progress(sent, sum(len(m.value or b"") for m in batch))
        return PublishReport(
            topic=topic,
            events=len(messages),
            bytes=sum(len(m.value or b"") for m in messages),
            versions={(e.tenant, e.doc_id): e.version for e in events},
            event_ids={(e.tenant, e.doc_id): e.event_id for e in events},
        )

    def lane_for(self, events: int) -> Lane:
        """The lane of a publish of `events` events that asks for none."""
        return Lane.BULK if events >= self.settings.kafka.bulk_threshold else Lane.LIVE

    async def delete(self, tenant: str, doc_ids: Sequence[str], lane: Lane | None = None) -> PublishReport:
        """Publish the delete events of these documents of `tenant` (InputError for an invalid id)."""
        return await self.publish(delete_events(tenant, doc_ids), lane=lane)

    async def close(self) -> None:
        """Flush and stop the producer, if it was started."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> DocumentPublisher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def publish_documents(
    settings: Settings,
    events: Sequence[DocumentEvent],
    *,
    on_progress: Callable[[int, int], None] | None = None,
    originals: Mapping[str, bytes] | None = None,
    lane: Lane | None = None,
) -> PublishReport:
    """Publish `events` once with a publisher of their own (the CLI, sources, tests and benchmarks)."""
    async with DocumentPublisher(settings) as publisher:
        return await publisher.publish(events, on_progress=on_progress, originals=originals, lane=lane)


async def delete_documents(settings: Settings, tenant: str, doc_ids: Sequence[str]) -> PublishReport:
    """Publish the deletes of these documents once, with a publisher of their own."""
    async with DocumentPublisher(settings) as publisher:
        return await publisher.delete(tenant, doc_ids)
