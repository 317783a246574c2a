"""Document lifecycle on real servers and worker processes: versions, replays, duplicates, invalidation, DLQ replay."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from fastapi.testclient import TestClient

from ragbus.dead_letters import list_dead_letters, replay_dead_letters
from schemas.codec import decode
from schemas.documents import DocumentEvent, DocumentOp
from schemas.invalidation import CacheInvalidation
from schemas.topics import Topics
from tests.pipeline_helpers import chunks_of, publish, wait_indexed
from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def doc(doc_id: str, version: int, text: str = "", op: DocumentOp = DocumentOp.UPSERT) -> DocumentEvent:
    body = text or f"Version {version} of {doc_id}: the lighthouse keeper logs the weather every evening."
    return DocumentEvent(doc_id=doc_id, version=version, op=op, text="" if op is DocumentOp.DELETE else body)


def test_an_older_version_never_overwrites_a_newer_one_and_is_counted(pipeline: Pipeline) -> None:
    before = pipeline.metric("indexer", "ragbus_stale_events_total")
    wait_indexed(pipeline, dict(publish(pipeline, [doc("ooo.md", 2000)])))
    publish(pipeline, [doc("ooo.md", 1000)])  # a producer retry / out-of-order source
    pipeline.wait_drained()
    assert {row["version"] for row in chunks_of(pipeline, "ooo.md")} == {2000}
    assert pipeline.metric("indexer", "ragbus_stale_events_total") == before + 1


def test_a_replayed_old_upsert_does_not_resurrect_a_deleted_document(pipeline: Pipeline) -> None:
    wait_indexed(pipeline, dict(publish(pipeline, [doc("phoenix.md", 100)])))
    wait_indexed(pipeline, dict.fromkeys(publish(pipeline, [doc("phoenix.md", 200, op=DocumentOp.DELETE)])))
    publish(pipeline, [doc("phoenix.md", 100)])  # the replay of an old event
    pipeline.wait_drained()
    assert chunks_of(pipeline, "phoenix.md") == []
    # A genuinely newer version after the delete recreates it.
    wait_indexed(pipeline, dict(publish(pipeline, [doc("phoenix.md", 300)])))
    assert {row["version"] for row in chunks_of(pipeline, "phoenix.md")} == {300}


def test_duplicate_delivery_leaves_exactly_the_same_index(pipeline: Pipeline) -> None:
    text = " ".join(f"Sentence {i} describes the tide tables of the northern harbour." for i in range(150))
    event = DocumentEvent(doc_id="tides.md", version=5, text=text)
    wait_indexed(pipeline, dict(publish(pipeline, [event])))
    once = sorted(str(row["chunk_id"]) for row in chunks_of(pipeline, "tides.md"))
    assert len(once) >= 3
    publish(pipeline, [event, event, event])  # the very same event delivered again
    pipeline.wait_drained()
    assert sorted(str(row["chunk_id"]) for row in chunks_of(pipeline, "tides.md")) == once


def test_delete_emits_a_cache_invalidation_event(pipeline: Pipeline) -> None:
    wait_indexed(pipeline, dict(publish(pipeline, [doc("gone.md", 10)])))
    wait_indexed(pipeline, dict.fromkeys(publish(pipeline, [doc("gone.md", 11, op=DocumentOp.DELETE)])))
    settings = pipeline.settings

    async def invalidations() -> list[CacheInvalidation]:
        consumer = AIOKafkaConsumer(
            Topics(settings.kafka.topic_prefix).cache_invalidation,
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            found: list[CacheInvalidation] = []
            for _ in range(5):
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    found += [decode(r.value, CacheInvalidation) for r in records]
            return [event for event in found if event.doc_id == "gone.md"]
        finally:
            await consumer.stop()

    events = asyncio.run(invalidations())
    assert [(e.op, e.version) for e in events] == [(DocumentOp.UPSERT, 10), (DocumentOp.DELETE, 11)]
    assert events[1].generation > events[0].generation


def test_dead_letters_replay_after_the_fix(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    big = DocumentEvent(doc_id="big-report.md", text="findings " * 15_000)  # 135k chars: over the 100k limit
    publish(pipeline, [big])
    pipeline.wait_drained()
    pending = [x for x in asyncio.run(list_dead_letters(settings, "chunker")) if x.key == b"big-report.md"]
    assert [x.reason.error_code for x in pending] == ["document_too_large"]
    assert chunks_of(pipeline, "big-report.md") == []

    # The fix: the chunker accepts larger documents. Then replay what it rejected.
    pipeline.worker("chunker").stop()
    pipeline.start_worker("chunker", RAGBUS_CHUNK_MAX_DOCUMENT_CHARS="500000")
    try:
        replayed = asyncio.run(replay_dead_letters(settings, "chunker"))
        assert replayed >= 1
        wait_indexed(pipeline, {("default", "big-report.md"): big.version})
        assert asyncio.run(replay_dead_letters(settings, "chunker")) == 0, "a dead letter is replayed once"
    finally:  # back to the configuration the other tests expect
        pipeline.worker("chunker").stop()
        pipeline.start_worker("chunker")
    after = [x for x in asyncio.run(list_dead_letters(settings, "chunker")) if x.key == b"big-report.md"]
    assert [x.replayed for x in after] == [True]


def test_the_correlation_id_travels_from_producer_to_the_indexer_log(pipeline: Pipeline) -> None:
    import orjson

    from ragbus.logging_setup import correlated

    with correlated("trace-7f3a"):
        versions = publish(pipeline, [doc("traced.md", 42)])
    wait_indexed(pipeline, dict(versions))
    log_path = pipeline.worker("indexer").log_path
    entries = [orjson.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    traced = [e for e in entries if e.get("correlation_id") == "trace-7f3a"]
    assert traced, "the indexer logged the document with the producer's correlation id"
    assert "'traced.md' v42" in traced[-1]["msg"]


def test_the_api_echoes_or_assigns_a_request_id(api: TestClient) -> None:
    given = api.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert given.headers["X-Request-ID"] == "req-123"
    unsafe = api.get("/healthz", headers={"X-Request-ID": "has spaces\tand tabs"})
    assert unsafe.headers["X-Request-ID"] != "has spaces\tand tabs"
    assert len(unsafe.headers["X-Request-ID"]) == 32
