"""Indexer stage: EmbeddedDocument in, Milvus upsert/delete, CacheInvalidation out."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from ragbus import metrics
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage
from ragbus.milvus_store import MilvusChunkStore
from ragbus.redis_store import IndexGeneration
from schemas.codec import decode, encode
from schemas.documents import DocumentOp, document_key
from schemas.embeddings import EmbeddedDocument
from schemas.invalidation import CacheInvalidation
from schemas.topics import Topics
from workers.runtime import Inbound, Rejected

log = logging.getLogger(__name__)


def latest_per_document(batch: list[Inbound[EmbeddedDocument]]) -> list[Inbound[EmbeddedDocument]]:
    """Only the newest event of each document in the batch matters (ties: the later offset wins)."""
    newest: dict[tuple[str, str], Inbound[EmbeddedDocument]] = {}
    for item in batch:
        key = (item.value.tenant, item.value.doc_id)
        current = newest.get(key)
        rank = (item.value.version, item.record.offset)
        if current is None or rank >= (current.value.version, current.record.offset):
            newest[key] = item
    return list(newest.values())


class IndexerHandler:
    """Applies each document's newest version to the aliased collection, never an older one over a newer."""

    stage = "indexer"

    def __init__(
        self,
        store: MilvusChunkStore,
        generation: IndexGeneration,
        producer: KafkaEventProducer,
        topics: Topics,
    ) -> None:
        self.store, self.generation, self.producer, self.topics = store, generation, producer, topics

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> EmbeddedDocument:
        """The embedded document."""
        return decode(record.value, EmbeddedDocument)

    async def process(self, batch: list[Inbound[EmbeddedDocument]]) -> list[Rejected]:
        """Upsert and delete in Milvus, then bump the index generation and announce each change."""
        docs = [item.value for item in latest_per_document(batch)]
        docs = await asyncio.to_thread(self._drop_stale, docs)
        upserts = [d for d in docs if d.op is DocumentOp.UPSERT]
        deletes = [(d.tenant, d.doc_id) for d in docs if d.op is DocumentOp.DELETE]
        if upserts:
            await asyncio.to_thread(self.store.replace_documents, upserts)
        if deletes:
            await asyncio.to_thread(self.store.delete_documents, deletes)
        if not docs:
            return []
        generation = await self.generation.bump()
        collection = await asyncio.to_thread(self.store.alias_target) or self.store.alias
        now = datetime.now(UTC)
        for doc in docs:
            metrics.FRESHNESS_SECONDS.observe(max(0.0, (now - doc.produced_at).total_seconds()))
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

    def _drop_stale(self, docs: list[EmbeddedDocument]) -> list[EmbeddedDocument]:
        # An event older than what is indexed (producer retry, replay, out-of-order source) must not win.
        fresh: list[EmbeddedDocument] = []
        by_tenant: dict[str, list[EmbeddedDocument]] = {}
        for doc in docs:
            by_tenant.setdefault(doc.tenant, []).append(doc)
        for tenant, group in by_tenant.items():
            indexed = self.store.indexed_versions(tenant, [d.doc_id for d in group])
            for doc in group:
                newest = max(indexed.get(doc.doc_id, {-1}))
                if doc.version < newest:
                    metrics.STALE_EVENTS.labels(self.stage).inc()
                    log.info("ignoring %s v%d of %r: v%d is indexed", doc.op, doc.version, doc.doc_id, newest)
                else:
                    fresh.append(doc)
        return fresh
