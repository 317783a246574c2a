"""Query cache through the real workers: exact invalidation after update and delete, tenants, single flight."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from query_api.app import create_app
from query_api.cache import CacheKeys, normalize_query
from query_api.invalidation import consumer_group
from query_api.retrieval import ALIAS_REFRESH_S
from ragbus.kafka_clients import consumer_lag
from ragbus.milvus.collections import MilvusCollectionAdmin
from ragbus.milvus.store import MilvusChunkStore
from ragbus.stack.process import free_port, stop_all
from ragbus.stack.servers import start_redis
from schemas.documents import DocumentEvent, DocumentOp
from schemas.topics import Topics
from tests.pipeline_helpers import publish, wait_indexed, writable
from tests.stack_fixtures import Pipeline, wait_for

pytestmark = [pytest.mark.integration]


def bird(doc_id: str, bird_name: str, sound: str, tenant: str = "default", **extra: object) -> DocumentEvent:
    text = (
        f"The {bird_name} is a songbird of the coastal forest. In the breeding season the {bird_name} mimics "
        f"{sound}, copying it perfectly from its perch. Rangers record the {bird_name} every spring."
    )
    return DocumentEvent.model_validate(
        {"doc_id": doc_id, "title": f"Songbirds: the {bird_name}", "text": text, "tenant": tenant, **extra}
    )


def ask(api: TestClient, query: str) -> dict[str, object]:
    response = api.post("/v1/query", json={"query": query, "top_k": 1})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def cited(body: dict[str, object]) -> list[str]:
    citations = body["citations"]
    assert isinstance(citations, list)
    return [c["doc_id"] for c in citations]


def invalidations_applied(pipeline: Pipeline) -> None:
    """Wait until the API's cache-invalidation consumer group has applied every event.

    The indexer commits a batch only after its invalidation events are delivered, so the pipeline drains first:
    a document can be searchable a moment before the indexer announces it.
    """
    pipeline.wait_drained()
    settings = pipeline.settings
    topic = Topics(settings.kafka.topic_prefix).cache_invalidation

    def caught_up() -> bool:
        return sum(asyncio.run(consumer_lag(settings, consumer_group(settings), topic)).values()) == 0

    wait_for(caught_up, timeout_s=60, interval_s=0.3, message="the api-cache group to apply every invalidation")


def test_an_update_never_serves_the_stale_cached_answer(pipeline: Pipeline, api: TestClient) -> None:
    doc_id = f"cache/lyrebird-{uuid.uuid4().hex[:6]}.md"
    wait_indexed(pipeline, dict(publish(pipeline, [bird(doc_id, "lyrebird", "chainsaws")])))
    invalidations_applied(pipeline)  # an answer computed while the tenant changes is (rightly) not cached
    question = "What does the lyrebird mimic in the breeding season?"
    first = ask(api, question)
    assert cited(first) == [doc_id] and "chainsaws" in str(first["answer"]) and first["cached"] is False
    assert ask(api, question)["cached"] is True

    wait_indexed(pipeline, dict(publish(pipeline, [bird(doc_id, "lyrebird", "camera shutters")])))
    invalidations_applied(pipeline)
    after = ask(api, question)
    assert after["cached"] is False
    assert "camera shutters" in str(after["answer"]) and "chainsaws" not in str(after["answer"])
    assert ask(api, question)["cached"] is True, "the fresh answer is cached again"
    assert re.search(r"^ragbus_cache_invalidation_lag 0\.0$", api.get("/metrics/").text, re.MULTILINE)


def test_retrieval_only_returns_the_answers_passages_cached_apart_and_invalidated(
    pipeline: Pipeline, api: TestClient
) -> None:
    doc_id = f"cache/tui-{uuid.uuid4().hex[:6]}.md"
    wait_indexed(pipeline, dict(publish(pipeline, [bird(doc_id, "tui", "doorbells")])))
    invalidations_applied(pipeline)
    question = "What does the tui mimic in the breeding season?"

    def retrieve() -> dict[str, object]:
        response = api.post("/v1/query", json={"query": question, "top_k": 3, "retrieve_only": True})
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    passages = retrieve()
    assert passages["answer"] == "" and passages["cached"] is False and cited(passages)[0] == doc_id
    answered = api.post("/v1/query", json={"query": question, "top_k": 3}).json()
    assert answered["cached"] is False, "an answer is not served from the retrieval-only entry"
    assert "doorbells" in answered["answer"] and answered["citations"] == passages["citations"]
    assert retrieve()["cached"] is True

    wait_indexed(pipeline, dict(publish(pipeline, [bird(doc_id, "tui", "ship horns")])))
    invalidations_applied(pipeline)
    after = retrieve()
    assert after["cached"] is False and cited(after)[0] == doc_id
    texts = [c["text"] for c in after["citations"] if c["doc_id"] == doc_id]  # type: ignore[attr-defined]
    assert "ship horns" in texts[0] and "doorbells" not in texts[0]


def test_a_new_document_reaches_answers_that_did_not_cite_it(pipeline: Pipeline, api: TestClient) -> None:
    name = f"quetzal{uuid.uuid4().hex[:4]}"
    question = f"What does the {name} mimic in the breeding season?"
    invalidations_applied(pipeline)
    before = ask(api, question)  # nothing about this bird yet: some other passage is cited
    assert ask(api, question)["cached"] is True
    doc_id = f"cache/{name}.md"
    wait_indexed(pipeline, dict(publish(pipeline, [bird(doc_id, name, "church bells")])))
    invalidations_applied(pipeline)
    after = ask(api, question)
    assert doc_id not in cited(before)
    assert after["cached"] is False and cited(after) == [doc_id] and "church bells" in str(after["answer"])


def test_a_delete_drops_exactly_the_answers_citing_it(pipeline: Pipeline, api: TestClient) -> None:
    tag = uuid.uuid4().hex[:6]
    kept, gone = f"cache/kept-{tag}.md", f"cache/gone-{tag}.md"
    wait_indexed(
        pipeline,
        dict(publish(pipeline, [bird(kept, "bellbird", "car alarms"), bird(gone, "catbird", "phone ringtones")])),
    )
    invalidations_applied(pipeline)
    keep_q, gone_q = "What does the bellbird mimic?", "What does the catbird mimic?"
    assert cited(ask(api, keep_q)) == [kept] and cited(ask(api, gone_q)) == [gone]
    assert ask(api, keep_q)["cached"] is True
    settings = pipeline.settings
    keys = CacheKeys(settings.redis.namespace, settings.milvus.alias)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        assert client.scard(keys.citing("default", gone)) == 2  # the entry and the last-good copy
        members = client.smembers(keys.citing("default", gone))
        wait_indexed(
            pipeline, dict.fromkeys(publish(pipeline, [bird(gone, "catbird", "x", op=DocumentOp.DELETE, text="")]))
        )
        invalidations_applied(pipeline)
        assert not any(client.exists(m) for m in members), "the answers citing the deleted document are gone"
        assert not client.exists(keys.citing("default", gone))
    finally:
        client.close()
    assert ask(api, keep_q)["cached"] is True, "an answer that does not cite the deleted document stays cached"
    after = ask(api, gone_q)
    assert after["cached"] is False and gone not in cited(after)
    assert "phone ringtones" not in str(after["answer"])


def test_an_unreadable_entry_is_a_miss_recomputed_and_cached_again(pipeline: Pipeline, api: TestClient) -> None:
    doc_id = f"cache/kea-{uuid.uuid4().hex[:6]}.md"
    wait_indexed(pipeline, dict(publish(pipeline, [bird(doc_id, "kea", "car horns")])))
    invalidations_applied(pipeline)
    question = "What does the kea mimic?"
    assert ask(api, question)["cached"] is False
    settings = pipeline.settings
    keys = CacheKeys(settings.redis.namespace, settings.milvus.alias)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        (entry,) = [m for m in client.smembers(keys.citing("default", doc_id)) if b":last:" not in m]
        client.set(entry, b'{"written by": "another version"}', keepttl=True)
        again = ask(api, question)
        assert again["cached"] is False and cited(again) == [doc_id] and "car horns" in str(again["answer"])
        rewritten = client.get(entry)
        assert isinstance(rewritten, bytes) and b'"generation"' in rewritten, "the recomputed answer replaced it"
    finally:
        client.close()
    assert ask(api, question)["cached"] is True


def test_changes_of_another_tenant_leave_the_cache_alone(pipeline: Pipeline, api: TestClient) -> None:
    question = "What does the bellbird of the coastal forest mimic?"
    invalidations_applied(pipeline)
    ask(api, question)
    assert ask(api, question)["cached"] is True
    other = f"cache/other-{uuid.uuid4().hex[:6]}.md"
    wait_indexed(pipeline, dict(publish(pipeline, [bird(other, "bellbird", "sirens", tenant="acme")])))
    invalidations_applied(pipeline)
    body = ask(api, question)
    assert body["cached"] is True and other not in cited(body)


def retrievals(api: TestClient) -> float:
    text = api.get("/metrics/").text
    match = re.search(r"^ragbus_retrieval_latency_seconds_count (\S+)$", text, re.MULTILINE)
    assert match
    return float(match.group(1))


def test_concurrent_identical_misses_retrieve_once_across_two_api_processes(
    pipeline: Pipeline, api: TestClient
) -> None:
    invalidations_applied(pipeline)  # nothing changes the tenant while the answer is computed
    question = f"Which songbird mimics car alarms? ({uuid.uuid4().hex[:6]})"
    assert normalize_query(question.upper()) == normalize_query(question)
    with TestClient(create_app(pipeline.settings)) as second:
        before = retrievals(api)
        clients = [api, second] * 6
        # Case and spacing differ: the normalized query is the same, so is the answer.
        queries = [question if n % 2 else "  " + question.upper() for n in range(len(clients))]
        with ThreadPoolExecutor(len(clients)) as pool:
            bodies = list(pool.map(ask, clients, queries))
        assert retrievals(api) - before == 1, "12 identical concurrent misses on 2 API instances: 1 retrieval"
    assert len({str(b["answer"]) for b in bodies}) == 1
    assert sum(b["cached"] is False for b in bodies) == 1


def test_an_alias_switch_never_serves_answers_of_the_previous_collection(
    pipeline: Pipeline, indexed_corpus: list[DocumentEvent]
) -> None:
    settings = pipeline.settings
    source = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    milvus = settings.milvus.model_copy(update={"alias": f"{settings.milvus.alias}_sw"})
    store = MilvusChunkStore(milvus, settings.milvus_uri)
    old, new = f"{milvus.alias}_a", f"{milvus.alias}_b"
    try:
        rows = source.client.query(
            source.alias_target() or "", filter='chunk_id != ""', output_fields=["*"], limit=16_000
        )
        store.ensure_alias(old, 384)
        store.ensure_collection(new, 384)
        rows = writable(rows)
        store.client.upsert(old, rows)
        # The "reindexed" collection words the koala's notes differently: what a new chunking or model would change.
        store.client.upsert(
            new, [{**r, "text": str(r["text"]).replace("eucalyptus", "reindexed eucalyptus")} for r in rows]
        )
        switched = type(settings)(**{**settings.__dict__, "milvus": milvus})
        question = f"What does the koala eat? ({uuid.uuid4().hex[:6]})"
        with TestClient(create_app(switched)) as client:
            first = ask(client, question)
            assert "reindexed" not in str(first["answer"]) and ask(client, question)["cached"] is True
            MilvusCollectionAdmin(store).switch_alias(new)
            switched_at = time.monotonic()
            # The API looks the alias up every ALIAS_REFRESH_S in the background: until then the old answer.
            after = ask(client, question)
            while "reindexed" not in str(after["answer"]) and time.monotonic() - switched_at < ALIAS_REFRESH_S + 10:
                time.sleep(0.1)
                after = ask(client, question)
        # The first answer from the new collection is computed there, not served from the old one's cache entry.
        assert after["cached"] is False and "reindexed eucalyptus" in str(after["answer"])
    finally:
        with contextlib.suppress(Exception):
            store.client.drop_alias(milvus.alias)
        for name in (old, new):
            with contextlib.suppress(Exception):
                store.client.drop_collection(name)
        store.close()
        source.close()


def test_answers_flow_while_redis_is_down_and_are_cached_again_after(
    pipeline: Pipeline, indexed_corpus: list[DocumentEvent], tmp_path: Path
) -> None:
    # This app joins the deployment's api-cache group with another Redis: nothing may be left for it to apply.
    invalidations_applied(pipeline)
    port = free_port()
    own_redis = start_redis(tmp_path, port)  # the test's own server: the machine's Redis is never stopped
    try:
        redis_settings = pipeline.settings.redis.model_copy(update={"url": SecretStr(f"redis://127.0.0.1:{port}/0")})
        settings = type(pipeline.settings)(**{**pipeline.settings.__dict__, "redis": redis_settings})
        with TestClient(create_app(settings)) as client:
            question = "What does the narwhal eat?"
            assert "arctic cod" in str(ask(client, question)["answer"])
            wait_for(lambda: ask(client, question)["cached"] is True, timeout_s=30, message="a cached answer")

            own_redis.stop()
            for q in (question, "What does the okapi eat?"):
                body = ask(client, q)  # no cache, no single-flight lock: still a full answer
                assert body["cached"] is False and body["degraded"] is False and body["citations"]

            own_redis = start_redis(tmp_path, port)  # back, empty (it keeps nothing on disk)
            wait_for(lambda: ask(client, question)["cached"] is True, timeout_s=30, message="caching again")
    finally:
        stop_all([own_redis], timeout_s=10)
