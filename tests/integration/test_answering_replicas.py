"""Read replicas: round-robin, failover when one stops, recovery when it returns; search down everywhere: no 500.

The replica is a second milvus-lite server started by the test on a spare port. The indexers write only the
primary, so the test copies the primary's rows (vectors included) into the replica with MilvusChunkStore.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from query_api.app import create_app
from query_api.breaker import BreakerState
from query_api.cache import CacheKeys
from ragbus.milvus.collections import MilvusCollectionAdmin
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings
from ragbus.stack.process import free_port, stop_all
from ragbus.stack.servers import start_milvus_lite
from schemas.documents import DocumentEvent
from tests.corpus import animal_doc_id
from tests.pipeline_helpers import writable
from tests.stack_fixtures import Pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def copy_index(settings: Settings, replica_uri: str) -> int:
    """Every chunk row of the primary's aliased collection, written into the same collection on the replica."""
    primary = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    replica = MilvusChunkStore(settings.milvus, replica_uri)
    try:
        collection = primary.alias_target()
        assert collection
        rows = primary.client.query(collection, filter='chunk_id != ""', output_fields=["*"], limit=16_000)
        replica.ensure_alias(collection, 384)
        replica.client.upsert(collection, writable(rows))
        return len(rows)
    finally:
        primary.close()
        replica.close()


def reading(settings: Settings, uris: str, cache_ttl_s: int, cooldown_s: float = 60.0) -> Settings:
    milvus = settings.milvus.model_copy(update={"read_uris": uris})
    api = settings.api.model_copy(
        update={"search_timeout_s": 3.0, "replica_breaker_failures": 1, "replica_breaker_cooldown_s": cooldown_s}
    )
    redis_settings = settings.redis.model_copy(update={"query_cache_ttl_s": cache_ttl_s})
    return type(settings)(**{**settings.__dict__, "milvus": milvus, "api": api, "redis": redis_settings})


def cites(client: TestClient, query: str, animal: str) -> dict[str, object]:
    response = client.post("/v1/query", json={"query": query, "top_k": 3})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    citations = body["citations"]
    assert isinstance(citations, list) and citations[0]["doc_id"] == animal_doc_id(animal)
    return body


def test_replica_failover_search_down_everywhere_and_recovery(
    pipeline: Pipeline, indexed_corpus: list[DocumentEvent], tmp_path: Path
) -> None:
    settings = pipeline.settings
    port = free_port()
    replica = start_milvus_lite(tmp_path, port)
    try:
        replica_uri = f"http://127.0.0.1:{port}"
        assert copy_index(settings, replica_uri) >= len(indexed_corpus)
        both = reading(settings, f"{replica_uri},{settings.milvus_uri}", cache_ttl_s=0)
        only_replica = reading(settings, replica_uri, cache_ttl_s=300, cooldown_s=2.0)
        remembered = f"What does the koala eat? ({uuid.uuid4().hex[:6]})"
        app = create_app(both)
        with TestClient(app) as client, TestClient(create_app(only_replica)) as lone:
            cites(lone, remembered, "koala")  # the replica alone answers (and the answer is cached)
            for _ in range(4):
                cites(client, "What does the puffin eat?", "puffin")

            replica.stop()
            for _ in range(6):  # round-robin would pick the stopped replica every other time
                cites(client, "What does the puffin eat?", "puffin")
            metrics = client.get("/metrics/").text
            replicas = app.state.ragbus.service.retriever.replicas
            assert next(r.breaker for r in replicas if r.uri == replica_uri).state is BreakerState.OPEN
            # The gauge is published; its value is the last state either app set (both apps run in this process,
            # and `lone`'s background alias lookups probe the same replica, half-opening its own breaker).
            assert f'ragbus_breaker_state{{name="milvus:{replica_uri}"}}' in metrics
            assert f'ragbus_replica_failovers_total{{replica="{replica_uri}"}}' in metrics

            # Search is down everywhere for `lone`: cached answers are still served ...
            assert cites(lone, remembered, "koala")["cached"] is True
            # ... also after a change of the tenant made the entry unreachable (the last good answer, degraded) ...
            client_redis = redis.Redis.from_url(settings.redis.url.get_secret_value())
            try:
                client_redis.incr(CacheKeys(settings.redis.namespace, settings.milvus.alias).generation("default"))
            finally:
                client_redis.close()
            body = cites(lone, remembered, "koala")
            assert body["cached"] is True and body["degraded"] is True
            # ... and a question never answered is a 503 with a stable code and Retry-After, never a 500.
            response = lone.post("/v1/query", json={"query": "What does the sloth eat?"})
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "search_unavailable"
            assert int(response.headers["Retry-After"]) >= 1
            stream = lone.post("/v1/query", json={"query": "What does the sloth eat?", "stream": True})
            assert stream.status_code == 503 and stream.json()["error"]["code"] == "search_unavailable"

            # The replica comes back: after its cool-down a trial search closes the breaker and answers flow again.
            replica = start_milvus_lite(tmp_path, port)
            sloth = {"query": "What does the sloth eat?", "top_k": 3}
            wait_for(lambda: lone.post("/v1/query", json=sloth).status_code == 200, timeout_s=60, interval_s=0.5)
            cites(lone, "What does the sloth eat? (again)", "sloth")
            assert f'ragbus_breaker_state{{name="milvus:{replica_uri}"}} 0.0' in lone.get("/metrics/").text
    finally:
        stop_all([replica], timeout_s=10)


def test_search_reads_the_named_collection_and_falls_back_to_the_alias_when_it_is_gone(
    pipeline: Pipeline, indexed_corpus: list[DocumentEvent]
) -> None:
    """The API searches the collection its cache key names, not whatever the server resolves the alias to."""
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    other = f"ragbus_test_named_{uuid.uuid4().hex[:8]}"
    try:
        serving = store.alias_target()
        assert serving
        koala = store.client.query(
            serving, filter=f'doc_id == "{animal_doc_id("koala")}"', output_fields=["*"], limit=1
        )[0]
        store.ensure_collection(other, 384)
        store.client.upsert(other, writable([{**koala, "chunk_id": "only-in-the-other-collection"}]))
        vector = koala["embedding"]

        from_other = store.search(vector, 5, "default", collection=other)
        assert [hit.chunk_id for hit in from_other] == ["only-in-the-other-collection"]
        through_alias = store.search(vector, 5, "default")
        assert through_alias[0].chunk_id == koala["chunk_id"]
        assert [h.chunk_id for h in store.search(vector, 5, "default", collection=serving)] == [
            h.chunk_id for h in through_alias
        ]

        # A collection dropped between the API's alias lookup and its search (a prune): answered from the alias.
        MilvusCollectionAdmin(store).drop(other)
        fallback = store.search(vector, 5, "default", collection=other)
        assert [h.chunk_id for h in fallback] == [h.chunk_id for h in through_alias]
    finally:
        MilvusCollectionAdmin(store).drop(other)
        store.close()
