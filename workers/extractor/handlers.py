"""Extractor stage: document event in, ExtractedDocument out (same key)."""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord

from ragbus import metrics
from ragbus.errors import InvalidMessage, PermanentError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage
from schemas.codec import decode, encode
from schemas.documents import DocumentEvent, document_key, key_problem, tombstone_event
from workers.extractor.batches import BatchExtractor, extract_batch
from workers.extractor.cache import ExtractionCache
from workers.extractor.extraction import Outcome
from workers.runtime import Inbound, Rejected


def decode_document_record(record: ConsumerRecord[bytes, bytes]) -> DocumentEvent:
    """The document event of a record; a tombstone (null value) is a delete of the key's document."""
    if record.value is None:
        if not record.key:
            raise InvalidMessage("tombstone without a key")
        return tombstone_event(record.key, record.timestamp)
    event = decode(record.value, DocumentEvent, exact_integers=True)
    # The key orders a document's events on one partition: an event under another key could overtake or be
    # overtaken by the document's own events, and its delete would remove nothing.
    if problem := key_problem(record.key, event):
        raise InvalidMessage(problem, code="key_mismatch")
    return event


class ExtractorHandler:
    """Extracts each document's text (from its original when it has one) and forwards it into its lane's extracted
    topic (`routes`: input topic -> output topic); deletes pass through."""

    stage = "extractor"

    def __init__(
        self,
        extractor: BatchExtractor,
        cache: ExtractionCache,
        producer: KafkaEventProducer,
        routes: dict[str, str],
    ) -> None:
        self.extractor, self.cache, self.producer, self.routes = extractor, cache, producer, routes

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> DocumentEvent:
        """The document event."""
        return decode_document_record(record)

    def chunks_in(self, value: DocumentEvent) -> int:
        """Not known before extraction; a batch is bounded by records (RAGBUS_WORKER_MAX_RECORDS)."""
        return 0

    async def stores_answer(self) -> bool:
        """Kafka, Redis (the extraction cache) and the object store (when configured) answer."""
        return (
            await self.producer.answers()
            and await self.cache.answers()
            and await asyncio.to_thread(self.extractor.extractor.store_answers)
        )

    async def process(self, batch: list[Inbound[DocumentEvent]]) -> list[Rejected]:
        """Extract (off the event loop, so heartbeats continue; documents side by side) and produce in the batch's
        order. A TransientError (object store or Redis down) propagates: the runner retries the whole batch."""
        results = await extract_batch(self.extractor, self.cache, [item.value for item in batch])
        done: list[tuple[Inbound[DocumentEvent], Outcome]] = []
        rejected: list[Rejected] = []
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, PermanentError):
                rejected.append(Rejected(item.record, result))
            else:
                done.append((item, result))
        await self.producer.send_all(
            [
                OutboundMessage(
                    self.routes[item.record.topic],  # the same lane downstream
                    document_key(outcome.document.tenant, outcome.document.doc_id),
                    encode(outcome.document),
                    list(item.record.headers or ()),
                )
                for item, outcome in done
                if outcome.document is not None
            ]
        )
        for _, outcome in done:
            metrics.EXTRACTIONS.labels(outcome.how).inc()
        return rejected
