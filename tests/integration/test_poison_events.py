"""No single bad event stalls a partition, and every boundary bounds its input (issue 22), on real servers.

- Out-of-bounds values are refused over REST with a 422, and dead-lettered by the extractor (the stage that
  reads the documents topic) with their reason when published raw on it, while a later document of another
  tenant on the same partition is still indexed within the freshness goal.
- A value the collection's schema refuses (a store-side data error) is dead-lettered by the indexer; the others
  are indexed.
- A REST delete or replace supersedes a version ahead of the clock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient

from ragbus.dead_letters import DeadLetter, list_dead_letters
from ragbus.embedding import model_dimension
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.schema import chunk_schema, ensure_loaded
from ragbus.milvus.store import MilvusChunkStore
from schemas.bounds import version_clock_now
from schemas.codec import encode
from schemas.documents import DocumentEvent, document_key
from schemas.topics import Topics
from tests.pipeline_helpers import freshness_of, publish, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HOUR_US = 3_600_000_000
FRESHNESS_GOAL_S = 2.0  # issue #7's idle p95 goal, from an event's production to searchable


def test_out_of_bounds_values_are_refused_over_rest_with_a_clear_422(api: TestClient) -> None:
    cases = {
        "version": ({"version": 2**63}, "9223372036854775807"),
        "big metadata": ({"metadata": {"n": 2**64}}, "signed 64 bits"),
        "far ahead": ({"version": version_clock_now() + 48 * HOUR_US}, "day ahead"),
        "NUL": ({"text": "nul \x00 inside"}, "control characters"),
        "string version": ({"version": "5"}, "valid integer"),
    }
    for name, (fields, reason) in cases.items():
        response = api.post("/v1/documents", json={"doc_id": "bounds.md", "text": "A note.", **fields})
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
        assert reason in response.json()["error"]["message"], (name, response.text)
    for body in ({"top_k": True}, {"top_k": "5"}, {"stream": 1}):
        response = api.post("/v1/query", json={"query": "koala", **body})
        assert response.status_code == 422, (body, response.text)


def _send_raw(pipeline: Pipeline, records: list[tuple[bytes, bytes]], partition: int) -> None:
    settings = pipeline.settings

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            for key, value in records:
                topic = Topics(settings.kafka.topic_prefix).documents
                await producer.send_and_wait(topic, key=key, value=value, partition=partition)
        finally:
            await producer.stop()

    asyncio.run(send())


def _letters(pipeline: Pipeline, stage: str, keys: set[bytes]) -> dict[bytes, DeadLetter]:
    letters = asyncio.run(list_dead_letters(pipeline.settings, stage))
    return {letter.key: letter for letter in letters if letter.key in keys}


def test_raw_events_out_of_bounds_are_dead_lettered_and_the_partition_keeps_flowing(pipeline: Pipeline) -> None:
    run = uuid.uuid4().hex[:6]
    ahead = version_clock_now() + 240 * HOUR_US
    poison = {  # key -> (value, code, reason)
        f"v263-{run}".encode(): (
            f'{{"doc_id": "v263-{run}", "text": "x", "version": 9223372036854775808}}',
            "invalid_message",
            "less than or equal to 9223372036854775807",
        ),
        f"nul-{run}".encode(): (f'{{"doc_id": "nul-{run}", "text": "a \\u0000 b"}}', "invalid_message", "control"),
        f"key-{run}".encode(): (f'{{"doc_id": "other-{run}", "text": "x"}}', "key_mismatch", "is not the document"),
        f"ahead-{run}".encode(): (
            f'{{"doc_id": "ahead-{run}", "text": "x", "version": {ahead}}}',
            "invalid_message",
            "day ahead",
        ),
        f"meta-{run}".encode(): (
            f'{{"doc_id": "meta-{run}", "text": "x", "metadata": {{"n": 18446744073709551616}}}}',
            "invalid_message",
            "signed 64 bits",
        ),
    }
    # Clean documents first, the same way on the same partition: the second one's freshness is what this machine
    # gives right now (the first may meet workers that have not served anything yet).
    for n in (1, 2):
        clean = DocumentEvent(doc_id=f"clean-{n}-{run}.md", tenant="acme", text=f"Heron {n} waits in the shallows.")
        _send_raw(pipeline, [(document_key(clean.tenant, clean.doc_id), encode(clean))], partition=0)
        wait_indexed(pipeline, {(clean.tenant, clean.doc_id): clean.version})
    later = DocumentEvent(doc_id=f"after-poison-{run}.md", tenant="acme", text="The otter floats on its back.")
    _send_raw(
        pipeline,
        [(key, value.encode()) for key, (value, _, _) in poison.items()]
        + [(document_key(later.tenant, later.doc_id), encode(later))],
        partition=0,
    )
    wait_indexed(pipeline, {(later.tenant, later.doc_id): later.version})
    # The other tenant's document, behind five poison events on its partition, is searchable within the freshness
    # goal (p95 under 2 s idle, docs/benchmarks.md); on a machine too loaded for that, no later than twice what the
    # clean one took. A poison event retried before being dead-lettered would cost seconds of backoff.
    freshness = freshness_of(pipeline, {clean.event_id, later.event_id})
    clean_s, later_s = freshness[clean.event_id], freshness[later.event_id]
    print(f"freshness: clean {clean_s:.2f} s, behind the poison events {later_s:.2f} s")
    assert later_s <= max(FRESHNESS_GOAL_S, 2 * clean_s), (clean_s, later_s)
    letters = _letters(pipeline, "extractor", set(poison))
    assert set(letters) == set(poison)
    for key, (value, code, reason) in poison.items():
        assert letters[key].value == value.encode(), "the payload is kept byte for byte"
        assert letters[key].reason.error_code == code, letters[key].reason
        assert reason in letters[key].reason.error, letters[key].reason.error
        assert letters[key].reason.partition == 0


def test_a_rest_delete_and_replace_supersede_a_version_ahead_of_the_clock(pipeline: Pipeline, api: TestClient) -> None:
    doc_id = f"ahead-{uuid.uuid4().hex[:6]}.md"
    ahead = version_clock_now() + 20 * HOUR_US
    posted = api.post("/v1/documents", json={"doc_id": doc_id, "text": "The heron waits.", "version": ahead})
    assert posted.status_code == 202, posted.text
    wait_indexed(pipeline, {("default", doc_id): ahead})

    replaced = api.post("/v1/documents", json={"doc_id": doc_id, "text": "The heron strikes at a fish."})
    assert replaced.status_code == 202, replaced.text
    assert replaced.json()["versions"] == [ahead], "a replace without a version takes the indexed version ahead"
    wait_for(lambda: "strikes" in _texts(pipeline, doc_id), timeout_s=180, message="the replacement indexed")

    deleted = api.delete(f"/v1/documents/{doc_id}")
    assert deleted.status_code == 202, deleted.text
    assert deleted.json()["versions"] == [ahead]
    wait_indexed(pipeline, {("default", doc_id): None})


def _texts(pipeline: Pipeline, doc_id: str) -> str:
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        rows = store.client.query(
            settings.milvus.alias, filter=f"doc_id == {milvus_str(doc_id)}", output_fields=["text"],
            consistency_level="Strong",
        )  # fmt: skip
    finally:
        store.close()
    return " ".join(str(row["text"]) for row in rows)


@pytest.fixture
def narrow_pipeline(base_servers: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    """A pipeline whose collection was created beforehand with doc_id limited to 24 characters: a value the
    contract allows and the store refuses."""
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    settings = Pipeline(env=env, home=stack_home).settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    collection = settings.milvus.initial_collection
    try:
        schema = chunk_schema(store, model_dimension(settings.embedding))  # the real layout, one field narrowed
        next(f for f in schema.fields if f.name == "doc_id").params["max_length"] = 24
        ensure_loaded(store, collection, lambda: schema, "embedding", "COSINE")
        MilvusDocumentStates(store).ensure(collection)
        store.client.create_alias(collection, settings.milvus.alias)
        with running_pipeline(env, stack_home) as pipeline:
            yield pipeline
    finally:
        for name in (settings.milvus.alias,):
            store.client.drop_alias(name)
        for name in (collection, MilvusDocumentStates.collection_for(collection)):
            store.client.drop_collection(name)
        store.close()


def test_a_value_the_store_refuses_is_dead_lettered_and_the_others_are_indexed(narrow_pipeline: Pipeline) -> None:
    refused = DocumentEvent(doc_id="a-document-id-of-forty-characters-x.md", text="The lynx hunts hares.")
    fine = [DocumentEvent(doc_id=f"ok-{i}.md", text=f"Note {i} about the lynx.") for i in range(3)]
    wait_indexed(
        narrow_pipeline, dict(publish(narrow_pipeline, [refused, *fine])) | {("default", refused.doc_id): None}
    )
    narrow_pipeline.wait_drained()
    letters = _letters(narrow_pipeline, "indexer", {document_key("default", refused.doc_id)})
    letter = letters[document_key("default", refused.doc_id)]
    assert letter.reason.error_code == "milvus_rejected"
    assert "max_length" in letter.reason.error
    assert narrow_pipeline.metric("indexer", "ragbus_dead_lettered_total") == 1
