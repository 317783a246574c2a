"""End to end on real servers: publish → extractor → chunker → embedder → indexer (real processes) → Milvus → API.

Every test here runs twice: on milvus-lite and on the real Milvus engine.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient

from ragbus.dead_letters import list_dead_letters
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
    tern = [c for c in body["citations"] if c["doc_id"] == "birds/tern.md"]  # type: ignore[attr-defined]
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
    # The API drops the answers citing it when its invalidation consumer applies the delete: within that
    # consumer's lag (longer right after the API joined its group, as here when this test runs first).
    deadline = time.monotonic() + 15
    while (after := ask(api, question))["cached"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert after["cached"] is False
    assert animal_doc_id("hoatzin") not in {c["doc_id"] for c in after["citations"]}  # type: ignore[attr-defined]


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


POISON = {
    b"malformed": (b"{this is not json", "invalid_message", "not JSON"),
    b"no-doc-id": (b'{"text": "orphan"}', "invalid_message", "doc_id: Field required"),
    b"future": (b'{"schema_version": 99, "doc_id": "x", "text": "hi"}', "unknown_schema_version", "99"),
    b"empty": (b'{"doc_id": "empty", "text": ""}', "invalid_message", "an upsert needs non-empty text"),
    b"huge": (
        orjson.dumps({"doc_id": "huge", "text": "word " * 30_000}),
        "document_too_large",
        "RAGBUS_CHUNK_MAX_DOCUMENT_CHARS=100000",
    ),
}


def test_each_kind_of_poison_is_dead_lettered_with_a_reason_and_good_documents_still_index(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    settings = pipeline.settings
    topics = Topics(settings.kafka.topic_prefix)

    async def send_poison() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_request_size=2_000_000)
        await producer.start()
        try:
            for key, (value, _, _) in POISON.items():
                await producer.send_and_wait(topics.documents, key=key, value=value)
        finally:
            await producer.stop()

    # Poison the extractor cannot decode stops there; a document too long to chunk passes it and stops at the chunker.
    stage_of = {key: "chunker" if code == "document_too_large" else "extractor" for key, (_, code, _) in POISON.items()}
    dead_before = {stage: pipeline.metric(stage, "ragbus_dead_lettered_total") for stage in ("extractor", "chunker")}
    asyncio.run(send_poison())
    good = animal_document("koi", doc_id="fish/koi-after-poison.md")
    wait_indexed(pipeline, dict(publish(pipeline, [good])))
    pipeline.wait_drained()

    by_key = {
        letter.key: letter
        for stage in ("extractor", "chunker")
        for letter in asyncio.run(list_dead_letters(settings, stage))
        if letter.key in POISON and stage_of[letter.key] == stage
    }
    assert set(by_key) == set(POISON)
    for key, (value, code, reason) in POISON.items():
        letter = by_key[key]
        assert letter.reason.error_code == code
        assert reason in letter.reason.error
        assert not letter.replayed
        if stage_of[key] == "extractor":
            assert letter.value == value, "the original payload is kept byte for byte"
            assert letter.reason.topic == topics.documents
        else:
            assert letter.reason.topic == topics.extracted  # what the chunker received, kept as it was
    for stage in ("extractor", "chunker"):
        dead = pipeline.metric(stage, "ragbus_dead_lettered_total")
        assert dead == dead_before[stage] + sum(s == stage for s in stage_of.values())

    listed = subprocess.run(
        [sys.executable, "-m", "ragbus", "dlq", "list", "--stage", "extractor", "--stage", "chunker"],
        check=False, env={**os.environ, **pipeline.env, "RAGBUS_STACK_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert all(f"key={key.decode()!r}" in listed.stdout for key in POISON)
    assert "document_too_large" in listed.stdout
