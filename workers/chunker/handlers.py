"""Chunker stage: ExtractedDocument in, ChunkedDocument out (same key)."""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord

from ragbus.errors import PermanentError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage
from ragbus.record_parts import encode_in_parts
from schemas.chunks import ChunkedDocument
from schemas.codec import decode
from schemas.documents import document_key
from schemas.extracted import ExtractedDocument
from workers.chunker.chunking import TokenChunker
from workers.runtime import Inbound, Rejected


class ChunkerHandler:
    """Cuts each extracted document into chunks and forwards them; deletes pass through with no chunks."""

    stage = "chunker"

    def __init__(self, chunker: TokenChunker, producer: KafkaEventProducer, routes: dict[str, str]) -> None:
        self.chunker, self.producer, self.routes = chunker, producer, routes

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> ExtractedDocument:
        """The extracted document."""
        return decode(record.value, ExtractedDocument)

    def chunks_in(self, value: ExtractedDocument) -> int:
        """Not known before chunking; a chunker batch is bounded by records and RAGBUS_CHUNK_MAX_DOCUMENT_CHARS."""
        return 0

    async def stores_answer(self) -> bool:
        """Kafka answers (the chunker's only store)."""
        return await self.producer.answers()

    def _chunk_all(
        self, batch: list[Inbound[ExtractedDocument]]
    ) -> tuple[list[tuple[Inbound[ExtractedDocument], ChunkedDocument]], list[Rejected]]:
        chunked: list[tuple[Inbound[ExtractedDocument], ChunkedDocument]] = []
        rejected: list[Rejected] = []
        for item in batch:
            try:
                chunked.append((item, self.chunker.chunk(item.value)))
            except PermanentError as exc:
                rejected.append(Rejected(item.record, exc))
        return chunked, rejected

    async def process(self, batch: list[Inbound[ExtractedDocument]]) -> list[Rejected]:
        """Chunk (off the event loop, so heartbeats continue) and produce into the same lane downstream."""
        chunked, rejected = await asyncio.to_thread(self._chunk_all, batch)
        limit = self.producer.settings.kafka.max_message_bytes
        await self.producer.send_all(
            [
                OutboundMessage(
                    self.routes[item.record.topic],
                    document_key(doc.tenant, doc.doc_id),
                    part,
                    list(item.record.headers or ()),
                )
                for item, doc in chunked
                for part in encode_in_parts(doc, limit)  # a version too large for one record goes in parts
            ]
        )
        return rejected
