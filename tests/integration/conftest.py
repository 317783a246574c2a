"""Session fixtures: tansu, milvus-lite, the real Milvus engine and Redis; pipelines of real worker processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from ragbus.object_store import S3ObjectStore
from ragbus.settings import ObjectSettings
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from ragbus.stack.servers import (
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    MilvusServerSecurity,
    start_milvus_lite,
    start_milvus_server,
    start_seaweedfs,
    start_tansu,
)
from schemas.documents import DocumentEvent
from tests.corpus import corpus
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import (
    SECURED_MILVUS,
    Pipeline,
    pipeline_env,
    running_pipeline,
    secure_real_milvus,
    test_redis_url,
)
from tests.tls_certs import make_tls_files


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A module marked one_engine (the API contract, the CLI, the page, the change sources, the lanes) runs on
    milvus-lite only: its real-engine variant would show nothing the engine decides and costs CI minutes."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_real = callspec is not None and callspec.params.get("engine") == "milvus-server"
        (dropped if on_real and item.get_closest_marker("one_engine") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def stack_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def base_servers(stack_home: Path) -> Iterator[dict[str, str]]:
    """A tansu broker (memory storage), a milvus-lite server and Redis."""
    started: list[ManagedProcess] = []
    try:
        kafka_port, milvus_port = free_port(), free_port()
        started.append(start_tansu(stack_home, kafka_port, "memory"))
        started.append(start_milvus_lite(stack_home, milvus_port))
        redis_url = test_redis_url(stack_home, started)
        yield {
            "kafka": f"127.0.0.1:{kafka_port}",
            "milvus-lite": f"http://127.0.0.1:{milvus_port}",
            "redis": redis_url,
        }
    finally:
        stop_all(started, timeout_s=10)


@pytest.fixture(scope="session")
def real_milvus(stack_home: Path) -> Iterator[str]:
    """The real Milvus 2.3 engine (eventually consistent by default), started once, secured as in production.

    It requires a login (root, with its initial password changed to a random one that the tests read from a
    token file, as from a mounted Kubernetes secret) and speaks TLS only, with a certificate from a test CA.
    Every real-engine test therefore connects as ragbus does to a secured deployment (stack_fixtures.pipeline_env).
    """
    port = free_port()
    tls = make_tls_files(stack_home / "milvus-certs")
    process = start_milvus_server(stack_home, port, security=MilvusServerSecurity(tls.cert, tls.key, tls.ca))
    uri = f"https://127.0.0.1:{port}"
    try:
        token_file = secure_real_milvus(uri, tls.ca, stack_home / "milvus-token")
        SECURED_MILVUS[uri] = {
            "RAGBUS_MILVUS_TOKEN_FILE": str(token_file),
            "RAGBUS_MILVUS_SERVER_PEM_PATH": str(tls.ca),
        }
        yield uri
    finally:
        stop_all([process], timeout_s=20)


@pytest.fixture(scope="session", params=["milvus-lite", pytest.param("milvus-server", marks=pytest.mark.real_milvus)])
def engine(request: pytest.FixtureRequest, base_servers: dict[str, str]) -> str:
    """URI of the Milvus engine under test: milvus-lite, then the real engine."""
    if request.param == "milvus-lite":
        return base_servers["milvus-lite"]
    uri: str = request.getfixturevalue("real_milvus")
    return uri


@pytest.fixture(scope="session")
def pipeline(engine: str, base_servers: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    """The three workers as real processes, on an isolated deployment of the engine under test."""
    with running_pipeline(pipeline_env(base_servers["kafka"], engine, base_servers["redis"]), stack_home) as running:
        yield running


@pytest.fixture(scope="session")
def api(pipeline: Pipeline) -> Iterator[TestClient]:
    """The query API of the pipeline (in-process; real Milvus, Redis and Kafka behind it)."""
    with TestClient(create_app(pipeline.settings)) as client:
        yield client


@pytest.fixture(scope="session")
def indexed_corpus(pipeline: Pipeline) -> list[DocumentEvent]:
    """The animal corpus, published once per pipeline and indexed."""
    events = corpus()
    wait_indexed(pipeline, dict(publish(pipeline, events)))
    return events


@pytest.fixture
def chunk_store(pipeline: Pipeline) -> Iterator[MilvusChunkStore]:
    """A MilvusChunkStore on the engine under test (with the credentials it needs)."""
    opened = MilvusChunkStore(pipeline.settings.milvus, pipeline.settings.milvus_uri)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def scratch_collection(chunk_store: MilvusChunkStore) -> Iterator[str]:
    """A name for a chunk collection of the test's own; it and its document states are dropped afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        for each in (name, MilvusDocumentStates.collection_for(name)):
            if chunk_store.client.has_collection(each):
                chunk_store.client.drop_collection(each)


@pytest.fixture(scope="session")
def seaweedfs(stack_home: Path) -> Iterator[dict[str, str]]:
    """A real SeaweedFS (`weed mini`, as the embedded stack runs it): the RAGBUS_OBJECTS_* of its S3 API."""
    port = free_port()
    process = start_seaweedfs(stack_home, port)
    try:
        yield {
            "RAGBUS_OBJECTS_URL": f"http://127.0.0.1:{port}",
            "RAGBUS_OBJECTS_ACCESS_KEY": S3_ACCESS_KEY,
            "RAGBUS_OBJECTS_SECRET_KEY": S3_SECRET_KEY,
        }
    finally:
        stop_all([process], timeout_s=10)


@pytest.fixture
def object_store(seaweedfs: dict[str, str]) -> Iterator[S3ObjectStore]:
    """A fresh bucket of the session's SeaweedFS."""
    settings = ObjectSettings(
        url=seaweedfs["RAGBUS_OBJECTS_URL"],
        access_key=seaweedfs["RAGBUS_OBJECTS_ACCESS_KEY"],
        secret_key=seaweedfs["RAGBUS_OBJECTS_SECRET_KEY"],
        bucket=f"t{uuid.uuid4().hex[:10]}",
    )
    opened = S3ObjectStore(settings)
    opened.ensure_bucket()
    try:
        yield opened
    finally:
        opened.close()
