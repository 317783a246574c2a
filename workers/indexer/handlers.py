"""Indexer stage: EmbeddedDocument in, Milvus upsert/delete, CacheInvalidation out."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from ragbus import metrics
from ragbus.errors import InvalidMessage, RagbusError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage
from ragbus.logging_setup import correlated, correlation_of
from ragbus.milvus.store import MilvusChunkStore
from ragbus.redis_store import IndexGeneration
from ragbus.write_marks import WriteMarks
from schemas.codec import decode, encode
from schemas.documents import document_key
from schemas.embeddings import EmbeddedChunk, EmbeddedDocument
from schemas.invalidation import CacheInvalidation
from schemas.topics import Topics, lane_of
from workers.indexer.applier import VersionApplier, check_chunk_ids
from workers.indexer.sealer import CollectionSealer
from workers.runtime import Inbound, Rejected

log = logging.getLogger(__name__)


def latest_per_document(batch: list[Inbound[EmbeddedDocument]]) -> list[Inbound[EmbeddedDocument]]:
    """Only the newest event of each document in the batch matters (ties: the later offset wins).

    The parts of that version in the batch (a version too large for one record, schemas.chunks.ChunkedVersion) are
    joined into one, so every chunk of them is written (the applier counts when the version is whole).
    """
    newest: dict[tuple[str, str], Inbound[EmbeddedDocument]] = {}
    for item in batch:
        key = (item.value.tenant, item.value.doc_id)
        current = newest.get(key)
        rank = (item.value.version, item.record.offset)
        if current is None or rank >= (current.value.version, current.record.offset):
            newest[key] = item
    return [join_parts(item, batch) for item in newest.values()]


def join_parts(latest: Inbound[EmbeddedDocument], batch: list[Inbound[EmbeddedDocument]]) -> Inbound[EmbeddedDocument]:
    """`latest`, with the chunks of the batch's other parts of the same version and chunk count (every one of them,
    a part delivered twice once: the applier counts what the collection holds to know when the version is whole)."""
    doc = latest.value
    if doc.chunk_total is None:
        return latest
    chunks: dict[int, EmbeddedChunk] = {}
    ours = (doc.tenant, doc.doc_id, doc.version, doc.chunk_total)
    for item in batch:
        other = item.value
        if (other.tenant, other.doc_id, other.version, other.chunk_total) == ours:
            chunks.update((chunk.index, chunk) for chunk in other.chunks)
    if len(chunks) == len(doc.chunks):
        return latest
    return Inbound(latest.record, doc.model_copy(update={"chunks": [chunks[i] for i in sorted(chunks)]}))


class IndexerHandler:
    """Applies each document's newest version to its pipeline's collection, never an older one over a newer.

    Only while that collection is the one served does a change bump the cache generation and announce itself on
    the cache-invalidation topic: a reindex building a new collection leaves the query cache alone.
    """

    stage = "indexer"

    def __init__(
        self,
        store: MilvusChunkStore,
        generation: IndexGeneration,
        producer: KafkaEventProducer,
        topics: Topics,
        marks: WriteMarks,
        *,
        dim: int,
        collection: str,
        sealer: CollectionSealer,
    ) -> None:
        self.store, self.generation, self.producer, self.topics = store, generation, producer, topics
        self.marks = marks
        self.dim, self.collection, self.sealer = dim, collection, sealer
        self.applier = VersionApplier(store, self.stage)

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> EmbeddedDocument:
        """The embedded document; vectors of another dimension than the collection's are refused here."""
        doc = decode(record.value, EmbeddedDocument)
        # base64 of float32: 4 bytes a dimension, 4 base64 characters per 3 bytes.
        expected = 4 * ((4 * self.dim + 2) // 3)
        if doc.dim != self.dim or any(len(c.vector) != expected for c in doc.chunks):
            raise InvalidMessage(
                f"{doc.model} vectors of dimension {doc.dim} cannot go into a {self.dim}-dimension collection: "
                "the embedder and the indexer use different RAGBUS_EMBED_MODEL settings"
            )
        check_chunk_ids(doc)
        return doc

    def chunks_in(self, value: EmbeddedDocument) -> int:
        """Each chunk is one row to upsert."""
        return len(value.chunks)

    async def stores_answer(self) -> bool:
        """Milvus, Redis and Kafka answer."""
        try:
            if not await asyncio.to_thread(self.store.serves, self.collection):
                return False
        except RagbusError:
            return False
        return await self.generation.answers() and await self.producer.answers()

    async def process(self, batch: list[Inbound[EmbeddedDocument]]) -> list[Rejected]:
        """Apply each document's newest version to Milvus, record it, bump the generation, announce the change."""
        collection = self.collection
        latest = [item.value for item in latest_per_document(batch)]
        async with self.sealer.between_flushes():
            docs, known = await asyncio.to_thread(self.applier.fresh, collection, latest)
            if not docs:
                return []
            applied = await asyncio.to_thread(self.applier.apply, collection, docs, known)
        if applied.written:  # before the invalidation that announces the change (ragbus.write_marks)
            await self.marks.record(collection, self.store.uri, applied.written)
        else:  # no timestamp: an older mark must not stand for these writes
            await self.marks.forget(collection, self.store.uri)
        self.sealer.wrote()
        # Checked after the write: if the alias moves here later, the switch itself bumps the generation.
        serving = await asyncio.to_thread(self.store.alias_target) == collection
        now = datetime.now(UTC)
        records = {item.value.event_id: item.record for item in batch}
        for doc in docs:
            freshness = max(0.0, (now - doc.produced_at).total_seconds())
            record = records[doc.event_id]
            if (doc.tenant, doc.doc_id) in applied.arriving:
                log.info(
                    "%r v%d in %s: %d of its %d chunks written in this batch, the rest still arriving in parts",
                    doc.doc_id, doc.version, collection, len(doc.chunks), doc.chunk_total,
                )  # fmt: skip
                continue
            if serving:  # a reindex replaying old events is not a freshness problem
                metrics.FRESHNESS_SECONDS.observe(freshness)
                metrics.LANE_FRESHNESS_SECONDS.labels(lane_of(record.topic).value).observe(freshness)
            # The record's timestamp is when the embedder published it: the rest is this stage's share.
            here = max(0.0, now.timestamp() - record.timestamp / 1000)
            with correlated(correlation_of(record.headers)):
                log.info(
                    "%s %r v%d in %s: %d chunks, %s %.2fs after publish (%.2fs after the embedder's output)",
                    doc.op, doc.doc_id, doc.version, collection, len(doc.chunks),
                    "searchable" if serving else "indexed (not served yet)", freshness, here,
                )  # fmt: skip
        if not serving:
            return []
        generation = await self.generation.bump()
        await self.producer.send_all(
            [
                OutboundMessage(
                    self.topics.cache_invalidation,
                    document_key(doc.tenant, doc.doc_id),
                    encode(
                        CacheInvalidation(
                            event_id=doc.event_id,
                            op=doc.op,
                            doc_id=doc.doc_id,
                            tenant=doc.tenant,
                            version=doc.version,
                            collection=collection,
                            generation=generation,
                            produced_at=doc.produced_at,
                            indexed_at=now,
                        )
                    ),
                )
                for doc in docs
            ]
        )
        return []
