"""Two Milvus deployments as read replicas, each fed from the same embedded topic by its own indexer group.

The log is the source of truth: the second indexer (RAGBUS_WORKER_GROUP_SUFFIX, RAGBUS_MILVUS_URI of the second
server, RAGBUS_MILVUS_REPLICA_NUMBER=2, which a one-node milvus-lite accepts) builds the same index independently.
The query API lists both in RAGBUS_MILVUS_READ_URIS and keeps answering when one server stops.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.document_follower import follow_documents
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import MilvusSettings, Settings, load_settings
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from ragbus.stack.servers import start_milvus_lite
from tests.corpus import animal_doc_id, corpus
from tests.pipeline_helpers import INDEX_TIMEOUT_S, publish, wait_indexed
from tests.stack_fixtures import SECURED_MILVUS, environment, pipeline_env, running_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def two_milvus(tmp_path: Path) -> Iterator[tuple[list[ManagedProcess], list[str]]]:
    ports = [free_port(), free_port()]
    servers = [start_milvus_lite(tmp_path / f"milvus{i}", port) for i, port in enumerate(ports)]
    try:
        yield servers, [f"http://127.0.0.1:{p}" for p in ports]
    finally:
        stop_all(servers, timeout_s=10)


def _indexed_on(settings: Settings, uri: str, expected: dict[tuple[str, str], int | None]) -> None:
    store = MilvusChunkStore(settings.milvus, uri)
    try:
        pending = asyncio.run(follow_documents(settings, store, expected, timeout_s=INDEX_TIMEOUT_S)).pending
    finally:
        store.close()
    assert not pending, f"not indexed on {uri} in time: {sorted(pending)[:5]}"


def test_two_deployments_fed_by_two_indexer_groups_and_failover(
    base_servers: dict[str, str], two_milvus: tuple[list[ManagedProcess], list[str]], tmp_path: Path
) -> None:
    servers, (uri_a, uri_b) = two_milvus
    env = pipeline_env(base_servers["kafka"], uri_a, base_servers["redis"])
    with running_pipeline(env, tmp_path) as pipeline:
        second_env = {
            **env,
            "RAGBUS_MILVUS_URI": uri_b,
            "RAGBUS_WORKER_GROUP_SUFFIX": ".dc2",
            "RAGBUS_MILVUS_REPLICA_NUMBER": "2",
            "RAGBUS_WORKER_METRICS_PORT": "0",
        }
        log = tmp_path / "indexer-dc2.log"
        second = ManagedProcess("indexer-dc2", [sys.executable, "-m", "ragbus", "worker", "indexer"], log, second_env)
        pipeline.workers.append(second.start())
        second.wait_ready(lambda: "ready: consuming" in log.read_text(), timeout_s=120)

        expected: dict[tuple[str, str], int | None] = dict(publish(pipeline, corpus()))
        wait_indexed(pipeline, expected)
        _indexed_on(pipeline.settings, uri_b, expected)

        with environment({**env, "RAGBUS_MILVUS_READ_URIS": f"{uri_a},{uri_b}", "RAGBUS_REDIS_QUERY_CACHE_TTL_S": "0"}):
            reading_both = load_settings()
        with TestClient(create_app(reading_both)) as client:

            def asks_koala() -> None:
                response = client.post("/v1/query", json={"query": "What does the koala eat?", "top_k": 3})
                assert response.status_code == 200, response.text
                assert response.json()["citations"][0]["doc_id"] == animal_doc_id("koala")

            for _ in range(4):
                asks_koala()
            servers[0].stop()  # deployment A goes away; B was built from the log on its own
            for _ in range(6):
                asks_koala()


@pytest.mark.real_milvus
def test_replica_number_on_a_one_node_engine_falls_back_with_a_warning(
    real_milvus: str, caplog: pytest.LogCaptureFixture
) -> None:
    extra = {"RAGBUS_MILVUS_REPLICA_NUMBER": "2", "RAGBUS_MILVUS_ALIAS": f"r{uuid.uuid4().hex[:8]}"}
    with environment(SECURED_MILVUS[real_milvus] | extra):
        settings = MilvusSettings()
    store = MilvusChunkStore(settings, real_milvus)
    try:
        with caplog.at_level(logging.WARNING, logger="ragbus.milvus.connection"):
            store.ensure_alias(settings.initial_collection, 8)
        state = store.client.get_load_state(settings.initial_collection)["state"]
        replicas = store.client.describe_replica(settings.initial_collection)
    finally:
        store.close()
    assert str(state).endswith("Loaded")
    assert len(replicas) == 1  # standalone: one query node, so one replica serves
    assert "RAGBUS_MILVUS_REPLICA_NUMBER=2 not applied" in caplog.text
