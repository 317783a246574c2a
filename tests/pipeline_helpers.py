"""Publish, wait and inspect helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi.testclient import TestClient

from ragbus.document_follower import follow_documents
from ragbus.document_publisher import publish_documents
from ragbus.kafka_clients import read_to_end, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.milvus.bm25 import SPARSE_FIELD
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.store import MilvusChunkStore
from schemas.codec import decode
from schemas.documents import DocumentEvent
from schemas.invalidation import CacheInvalidation
from schemas.topics import Topics
from tests.stack_fixtures import Pipeline

INDEX_TIMEOUT_S = 180


def publish(pipeline: Pipeline, events: list[DocumentEvent]) -> dict[tuple[str, str], int]:
    report = asyncio.run(publish_documents(pipeline.settings, events))
    return report.versions


def wait_indexed(
    pipeline: Pipeline, expected: dict[tuple[str, str], int | None], timeout_s: float = INDEX_TIMEOUT_S
) -> None:
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        pending = asyncio.run(follow_documents(settings, store, expected, timeout_s=timeout_s)).pending
    finally:
        store.close()
    assert not pending, f"not indexed in time: {sorted(pending)[:5]}"


def chunks_of(pipeline: Pipeline, doc_id: str, tenant: str = "default") -> list[dict[str, object]]:
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        return store.client.query(  # test inspection of the raw rows
            settings.milvus.alias,
            filter=f"tenant == {milvus_str(tenant)} and doc_id == {milvus_str(doc_id)}",
            output_fields=["chunk_id", "version", "chunk_index"],
            consistency_level="Strong",
        )
    finally:
        store.close()


def ask(api: TestClient, query: str, top_k: int = 3) -> dict[str, object]:
    response = api.post("/v1/query", json={"query": query, "top_k": top_k})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def writable(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Rows read with output_fields=["*"], ready to write elsewhere: without the BM25 field the server derives."""
    return [{k: v for k, v in row.items() if k != SPARSE_FIELD} for row in rows]


def freshness_of(pipeline: Pipeline, event_ids: set[str], timeout_s: float = 30) -> dict[str, float]:
    """Seconds from each event's `produced_at` to when the indexer made it searchable, as the indexer announced it
    on the cache-invalidation topic (what the status view's freshness figures are made of). The announcement
    follows the write: this waits, at most `timeout_s`, until every event's is on the topic."""
    settings = pipeline.settings

    async def read() -> dict[str, float]:
        consumer = AIOKafkaConsumer(**kafka_connection(settings), enable_auto_commit=False)
        await start_client(settings, consumer)
        try:
            topic = Topics(settings.kafka.topic_prefix).cache_invalidation
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            found: dict[str, float] = {}
            deadline = time.monotonic() + timeout_s
            while True:
                for record in await read_to_end(consumer, tps):
                    change = decode(record.value, CacheInvalidation)
                    if change.event_id in event_ids:
                        found[change.event_id] = (change.indexed_at - change.produced_at).total_seconds()
                if set(found) == event_ids or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert set(found) == event_ids, f"never announced: {sorted(event_ids - set(found))}"
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())
