"""Zero-downtime reindex on real servers: queries keep answering while a new collection is built from the log,
the alias switches when it has caught up, a live update lands in the new collection, rollback and prune work.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from query_api.retrieval import ALIAS_REFRESH_S
from ragbus.milvus.collections import MilvusCollectionAdmin
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from ragbus.pipelines import PipelineRegistry
from ragbus.reindex import Reindexer, ReindexOptions
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from schemas.pipelines import PipelineState
from schemas.topics import STAGES
from tests.corpus import ANIMALS, animal_doc_id, animal_document, corpus
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class QueryLoad:
    """Queries sent continuously from a thread, every answer recorded with when it was asked."""

    url: str
    results: list[tuple[float, int, dict[str, object]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        animals = list(ANIMALS)
        with httpx.Client(timeout=30) as client:
            n = 0
            while not self.stop.is_set():
                asked = time.monotonic()
                animal = animals[n % len(animals)]
                n += 1
                try:
                    response = client.post(f"{self.url}/v1/query", json={"query": f"What does the {animal} eat?"})
                    body = response.json() if response.headers.get("content-type") == "application/json" else {}
                    self.results.append((asked, response.status_code, body))
                except httpx.HTTPError as exc:
                    self.results.append((asked, 0, {"error": str(exc)}))
                time.sleep(0.1)

    def since(self, moment: float) -> list[dict[str, object]]:
        return [body for asked, _, body in self.results if asked > moment]

    def settled(self, moment: float, chunks: set[tuple[str, str]], within_s: float = 20) -> float:
        """When answers first came only from `chunks` after `moment` (the API follows an alias move within about
        ALIAS_REFRESH_S; longer on a loaded machine or while the real engine's proxies update)."""

        def first() -> float | None:
            return next((asked for asked, _, body in self.results if asked > moment and cited(body) <= chunks), None)

        wait_for(lambda: first() is not None, timeout_s=within_s, message="answers from the collection now served")
        settled_at = first()
        assert settled_at is not None and settled_at - moment < within_s
        return settled_at


def cited(body: dict[str, object]) -> set[tuple[str, str]]:
    """(chunk_id, text) of every citation of an answer."""
    citations: list[dict[str, str]] = body["citations"]  # type: ignore[assignment]
    return {(c["chunk_id"], c["text"]) for c in citations}


def cites(body: dict[str, object], doc_id: str) -> bool:
    return any(c["doc_id"] == doc_id for c in body["citations"])  # type: ignore[attr-defined]


def chunk_texts(pipeline: Pipeline, collection: str) -> set[tuple[str, str]]:
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        rows = store.client.query(
            collection, filter='chunk_id != ""', output_fields=["chunk_id", "text"], consistency_level="Strong"
        )
        return {(r["chunk_id"], r["text"]) for r in rows}
    finally:
        store.close()


def ragbus_cli(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **pipeline.env, "RAGBUS_STACK_HOME": str(pipeline.home / "no-stack")}
    return subprocess.run(
        [sys.executable, "-m", "ragbus", *args], check=False, cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


@pytest.fixture
def deployment(base_servers: dict[str, str], stack_home: Path) -> Pipeline:
    """A fresh deployment on milvus-lite."""
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    return Pipeline(env=env, home=stack_home)


def test_reindex_switches_without_a_failed_query_then_rolls_back_and_prunes(
    engine: str, base_servers: dict[str, str], stack_home: Path
) -> None:
    """On milvus-lite and on the real Milvus engine."""
    pipeline = Pipeline(env=pipeline_env(base_servers["kafka"], engine, base_servers["redis"]), home=stack_home)
    settings = pipeline.settings
    old = settings.milvus.initial_collection
    new = f"{settings.milvus.alias}_small"
    api_port = free_port()
    api_log = pipeline.home / f"{settings.kafka.topic_prefix}-api.log"
    api = ManagedProcess(
        "api", [sys.executable, "-m", "ragbus", "api"], api_log, {**pipeline.env, "RAGBUS_API_PORT": str(api_port)}
    )
    load = QueryLoad(f"http://127.0.0.1:{api_port}")
    thread = threading.Thread(target=load.run, daemon=True)
    try:
        pipeline.start_workers()
        wait_indexed(pipeline, dict(publish(pipeline, corpus())))
        api.start().wait_ready(lambda: httpx.get(f"{load.url}/readyz", timeout=5).status_code == 200, timeout_s=120)
        thread.start()

        # A new pipeline with much smaller chunks; its workers replay the documents topic into its collection.
        spec = asyncio.run(Reindexer(settings).start(ReindexOptions(chunk_tokens=24, chunk_overlap=4, collection=new)))
        assert spec.previous == old
        for stage in STAGES:
            pipeline.start_worker(stage, RAGBUS_WORKER_PIPELINE=new)
        # A live update while the reindex runs: it must reach the new collection too.
        koala = animal_document("koala", text="Koalas now mostly eat ghost gum leaves, our keepers report.")
        updated = publish(pipeline, [koala])

        # `ragbus reindex` resumes the one in progress, follows it and switches once caught up and verified.
        result = ragbus_cli(pipeline, "reindex", "--timeout", "300")
        # The API re-reads the alias (part of every cache key) at most every ALIAS_REFRESH_S.
        switched_at = time.monotonic() + ALIAS_REFRESH_S
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"resuming the reindex into {new}" in result.stdout
        assert "replayed 25/25 document events" in result.stdout  # 24 documents and the update
        assert f"switched: alias {settings.milvus.alias} -> {new}" in result.stdout
        # Enough answers after the switch, one of them about the koala (the questions go round all 24 animals).
        wait_for(
            lambda: (
                len(load.since(switched_at)) >= 30
                and any(cites(body, animal_doc_id("koala")) for body in load.since(switched_at))
            ),
            timeout_s=180,
            message="answers after the switch",
        )

        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        try:
            assert store.alias_target() == new
            state = MilvusDocumentStates(store).get(new, [("default", animal_doc_id("koala"))])
            assert state[("default", animal_doc_id("koala"))].version == updated[("default", animal_doc_id("koala"))]
            admin = MilvusCollectionAdmin(store)
            assert admin.live_documents(new) == admin.live_documents(old) == 24
            assert admin.chunk_count(new) > 2 * admin.chunk_count(old)
        finally:
            store.close()
        new_chunks, old_chunks = chunk_texts(pipeline, new), chunk_texts(pipeline, old)
        settled = load.settled(switched_at, new_chunks)
        wait_for(
            lambda: (
                len(load.since(settled)) >= 30
                and any(cites(body, animal_doc_id("koala")) for body in load.since(settled))
            ),
            timeout_s=180,
            message="answers once the API follows the switch",
        )
        after = load.since(settled)
        for body in after:
            assert cited(body) <= new_chunks, body
        assert any(not cited(body) <= old_chunks for body in after)
        koala_answers = [body for body in after if cites(body, animal_doc_id("koala"))]
        assert koala_answers
        assert all("ghost gum" in str(body["citations"]) for body in koala_answers)

        # Rollback: the previous collection (kept current by its pipeline) serves again, atomically.
        rollback = ragbus_cli(pipeline, "reindex", "--rollback")
        rolled_back_at = time.monotonic() + ALIAS_REFRESH_S
        assert rollback.returncode == 0, rollback.stderr
        assert f"rolled back: alias {settings.milvus.alias} -> {old}" in rollback.stdout
        time.sleep(3)
        old_chunks = chunk_texts(pipeline, old)  # now holds the koala update too
        for body in load.since(load.settled(rolled_back_at, old_chunks)):
            assert cited(body) <= old_chunks, body

        # Prune: the standby pipeline is retired, its collection and topics are gone; serving is untouched.
        for worker in [w for w in pipeline.workers if w.running and "RAGBUS_WORKER_PIPELINE" in w.env]:
            stop_all([worker], timeout_s=10)
        pruned = ragbus_cli(pipeline, "reindex", "--prune")
        assert pruned.returncode == 0, pruned.stderr
        assert f"pruned 1 collection(s): {new}" in pruned.stdout
        specs = asyncio.run(PipelineRegistry(settings).load())
        assert specs[new].state is PipelineState.RETIRED and specs[old].state is PipelineState.SERVING
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        try:
            assert not MilvusCollectionAdmin(store).exists(new)
            assert store.alias_target() == old
        finally:
            store.close()
        time.sleep(1)
    finally:
        load.stop.set()
        if thread.is_alive():
            thread.join(timeout=30)
        stop_all([api], timeout_s=10)
        pipeline.stop_workers()
    failed = [(status, body) for _, status, body in load.results if status != 200]
    assert not failed, failed[:3]
    assert len(load.results) > 50


def test_a_second_reindex_is_refused_while_one_is_in_progress_and_abandon_leaves_serving_alone(
    deployment: Pipeline,
) -> None:
    settings = deployment.settings
    reindexer = Reindexer(settings)
    spec = asyncio.run(reindexer.start(ReindexOptions(chunk_tokens=64, chunk_overlap=8)))
    assert spec.collection == f"{settings.milvus.alias}_v2"
    again = ragbus_cli(deployment, "reindex", "--chunk-tokens", "32")
    assert again.returncode == 1
    assert f"a reindex into {spec.collection} is in progress" in again.stderr
    status = ragbus_cli(deployment, "status")
    assert status.returncode == 0, status.stderr
    building = next(line for line in status.stdout.splitlines() if spec.collection in line and "building" in line)
    assert "chunk_tokens=64" in building and "replayed 0/0 document events" in building
    abandoned = ragbus_cli(deployment, "reindex", "--abandon")
    assert abandoned.returncode == 0, abandoned.stderr
    assert f"abandoned the reindex into {spec.collection}" in abandoned.stdout
    listed = ragbus_cli(deployment, "reindex", "--list")
    assert f"{spec.collection}\tretired" in listed.stdout
    assert f"{settings.milvus.initial_collection}\tserving" in listed.stdout
    bad = ragbus_cli(deployment, "reindex", "--chunk-tokens", "32", "--overlap", "40")
    assert bad.returncode == 1
    assert "chunk overlap (40) must be smaller than chunk tokens (32)" in bad.stderr
    nothing = ragbus_cli(deployment, "reindex", "--rollback")
    assert nothing.returncode == 1 and "nothing to roll back to" in nothing.stderr
