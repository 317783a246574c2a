"""End to end on real servers: publish → chunker → embedder → indexer (real processes) → Milvus → query API.

Every test here runs twice: on milvus-lite and on the real Milvus engine.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi.testclient import TestClient

from schemas.dead_letter import DeadLetterHeaders
from schemas.documents import DocumentEvent, DocumentOp, document_key
from schemas.topics import Topics
from tests.corpus import ANIMALS, animal_doc_id, animal_document
from tests.pipeline_helpers import ask, chunks_of, publish, wait_indexed
from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_readyz_reports_every_dependency(api: TestClient) -> None:
    response = api.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"kafka": "ok", "milvus": "ok", "model": "ok", "redis": "ok"}


def test_published_documents_are_searchable_and_the_right_one_ranks_first(
    api: TestClient, indexed_corpus: list[DocumentEvent]
) -> None:
    assert len(indexed_corpus) == len(ANIMALS) == 24
    misses = []
    for animal in ["pangolin", "narwhal", "koala", "blue whale", "red panda", "kakapo"]:
        body = ask(api, f"What does the {animal} eat?")
        citations = body["citations"]
        assert isinstance(citations, list) and citations
        if citations[0]["doc_id"] != animal_doc_id(animal):
            misses.append((animal, citations[0]["doc_id"]))
        assert "[1]" in str(body["answer"])
        assert body["cached"] is False and body["degraded"] is False
    assert not misses


def test_answer_quotes_the_cited_passage(api: TestClient, indexed_corpus: list[DocumentEvent]) -> None:
    body = ask(api, "Which animal eats eucalyptus leaves?", top_k=1)
    citation = body["citations"][0]  # type: ignore[index]
    assert citation["doc_id"] == animal_doc_id("koala")
    assert citation["title"] == "Field notes: the koala"
    assert "eucalyptus leaves" in citation["text"]
    assert "eucalyptus leaves" in str(body["answer"])
    assert 0 < citation["score"] <= 1


def test_repeated_question_is_served_from_cache(api: TestClient, indexed_corpus: list[DocumentEvent]) -> None:
    first = ask(api, "What does the okapi eat?")
    second = ask(api, "  what does the OKAPI eat? ")
    assert first["cached"] is False
    assert second["cached"] is True
    assert second["citations"] == first["citations"]


def test_update_with_fewer_chunks_replaces_every_old_chunk(pipeline: Pipeline, api: TestClient) -> None:
    long_text = " ".join(f"Paragraph {i} about the migration of the arctic tern over many oceans." for i in range(120))
    v1 = DocumentEvent(doc_id="birds/tern.md", title="Arctic tern", text=long_text)
    wait_indexed(pipeline, dict(publish(pipeline, [v1])))
    old = chunks_of(pipeline, "birds/tern.md")
    assert len(old) >= 4
    assert {row["version"] for row in old} == {v1.version}

    v2 = DocumentEvent(doc_id="birds/tern.md", title="Arctic tern", text="The arctic tern now nests in Iceland.")
    wait_indexed(pipeline, dict(publish(pipeline, [v2])))
    new = chunks_of(pipeline, "birds/tern.md")
    assert [(row["version"], row["chunk_index"]) for row in new] == [(v2.version, 0)]
    body = ask(api, "Where does the arctic tern nest?", top_k=5)
    tern = [c for c in body["citations"] if c["doc_id"] == "birds/tern.md"]  # type: ignore[union-attr]
    assert [c["text"] for c in tern] == ["The arctic tern now nests in Iceland."]


def test_delete_removes_the_document_and_no_stale_cached_answer_survives(
    pipeline: Pipeline, api: TestClient, indexed_corpus: list[DocumentEvent]
) -> None:
    question = "What does the hoatzin eat?"
    before = ask(api, question)
    assert before["citations"][0]["doc_id"] == animal_doc_id("hoatzin")  # type: ignore[index]
    assert ask(api, question)["cached"] is True

    delete = DocumentEvent(op=DocumentOp.DELETE, doc_id=animal_doc_id("hoatzin"))
    wait_indexed(pipeline, dict.fromkeys(publish(pipeline, [delete])))
    assert chunks_of(pipeline, animal_doc_id("hoatzin")) == []
    after = ask(api, question)
    assert after["cached"] is False
    assert animal_doc_id("hoatzin") not in {c["doc_id"] for c in after["citations"]}  # type: ignore[union-attr]


def test_tombstone_deletes_the_keyed_document(pipeline: Pipeline, indexed_corpus: list[DocumentEvent]) -> None:
    settings = pipeline.settings

    async def send_tombstone() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            key = document_key("default", animal_doc_id("sloth"))
            await producer.send_and_wait(Topics(settings.kafka.topic_prefix).documents, key=key, value=None)
        finally:
            await producer.stop()

    assert chunks_of(pipeline, animal_doc_id("sloth"))
    asyncio.run(send_tombstone())
    wait_indexed(pipeline, {("default", animal_doc_id("sloth")): None})


def test_ids_with_quotes_and_backslashes_are_stored_and_deleted_exactly(pipeline: Pipeline) -> None:
    tricky = 'notes/"quoted" \\ and \' odd.md'
    neighbour = "notes/plain.md"
    events = [
        DocumentEvent(doc_id=tricky, text="A note with a tricky name about lighthouses."),
        DocumentEvent(doc_id=neighbour, text="A plain note about lighthouses."),
    ]
    wait_indexed(pipeline, dict(publish(pipeline, events)))
    assert len(chunks_of(pipeline, tricky)) == 1
    wait_indexed(pipeline, dict.fromkeys(publish(pipeline, [DocumentEvent(op=DocumentOp.DELETE, doc_id=tricky)])))
    assert chunks_of(pipeline, tricky) == []
    assert len(chunks_of(pipeline, neighbour)) == 1


def test_poison_message_is_dead_lettered_and_good_ones_still_index(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    topics = Topics(settings.kafka.topic_prefix)

    async def send_poison() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topics.documents, key=b"broken", value=b"{this is not json")
        finally:
            await producer.stop()

    async def read_dead_letters() -> list[tuple[bytes | None, DeadLetterHeaders]]:
        consumer = AIOKafkaConsumer(
            topics.dead_letter("chunker"),
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=5000)
            return [
                (record.value, DeadLetterHeaders.from_kafka(record.headers))
                for records in batches.values()
                for record in records
            ]
        finally:
            await consumer.stop()

    asyncio.run(send_poison())
    good = animal_document("koi", doc_id="fish/koi-after-poison.md")
    wait_indexed(pipeline, dict(publish(pipeline, [good])))
    dead = asyncio.run(read_dead_letters())
    assert [(value, headers.error_code) for value, headers in dead] == [(b"{this is not json", "invalid_message")]
    assert dead[0][1].topic == topics.documents
    assert "not JSON" in dead[0][1].error
