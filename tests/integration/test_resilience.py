"""Crashes and outages during ingest, with real worker processes and real servers: the final index is exact.

- SIGKILL of each worker mid-batch during a 500-document ingest, then restart.
- SIGTERM mid-ingest: the worker finishes its batch, commits and exits within a bounded time.
- A poll carrying more chunks than RAGBUS_WORKER_MAX_CHUNKS: the batch stops at the budget, the rest is polled
  again, and nothing is processed twice or skipped.
- Milvus stopped for 10 s and Redis stopped for 10 s during ingest (our own instances on spare ports; the
  machine's shared Redis is never touched).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from ragbus.dead_letters import list_dead_letters
from ragbus.embedding import ModelTokenizer
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import ChunkingSettings, EmbeddingSettings
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from ragbus.stack.servers import start_milvus_lite, start_redis
from schemas.documents import DocumentEvent
from tests.pipeline_helpers import chunks_of, publish, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline, wait_for
from workers.chunker.chunking import TokenChunker

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOPICS = ["harbour", "orchard", "glacier", "library", "volcano", "bakery", "observatory", "vineyard", "canal", "mill"]


def ingest_corpus(count: int, prefix: str) -> list[DocumentEvent]:
    """Documents of four or five chunks each, so batches take long enough to be interrupted."""
    events = []
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        sentences = [
            f"Entry {i}.{j}: the {topic} ledger records shipment {i * 31 + j} and its weight." for j in range(45)
        ]
        events.append(
            DocumentEvent(doc_id=f"{prefix}/{i:04d}.md", title=f"{topic} ledger {i}", text=" ".join(sentences))
        )
    return events


def expected_chunk_ids(events: list[DocumentEvent], settings: ChunkingSettings) -> dict[str, list[str]]:
    chunker = TokenChunker(ModelTokenizer.from_settings(EmbeddingSettings()), settings)
    return {e.doc_id: sorted(c.chunk_id for c in chunker.chunk(e).chunks) for e in events}


def assert_index_exact(pipeline: Pipeline, events: list[DocumentEvent]) -> None:
    """Every document present once, at its version, with exactly its chunks — nothing missing, nothing extra."""
    settings = pipeline.settings
    expected = expected_chunk_ids(events, settings.chunking)
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        rows = []
        for start in range(0, len(events), 100):
            ids = ", ".join(f'"{e.doc_id}"' for e in events[start : start + 100])
            rows += store.client.query(
                settings.milvus.alias, filter=f"doc_id in [{ids}]", output_fields=["doc_id", "chunk_id", "version"]
            )
    finally:
        store.close()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["doc_id"], []).append(row["chunk_id"])
    assert {doc_id: sorted(ids) for doc_id, ids in found.items()} == expected
    versions = {e.doc_id: e.version for e in events}
    assert all(row["version"] == versions[row["doc_id"]] for row in rows)
    duplicates = [cid for cid, n in Counter(r["chunk_id"] for r in rows).items() if n > 1]
    assert not duplicates


@pytest.fixture
def fresh_pipeline(base_servers: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    with running_pipeline(env, stack_home) as pipeline:
        yield pipeline


def when(predicate: Callable[[], bool], what: str) -> None:
    wait_for(predicate, timeout_s=240, interval_s=0.05, message=what)


def _processed_at_least(pipeline: Pipeline, stage: str, count: int) -> bool:
    return processed(pipeline, stage) >= count


def processed(pipeline: Pipeline, stage: str) -> float:
    try:
        return pipeline.metric(stage, "ragbus_stage_messages_total")
    except OSError:
        return 0.0


def test_sigkill_of_each_worker_mid_batch_leaves_the_index_exact(fresh_pipeline: Pipeline) -> None:
    pipeline = fresh_pipeline
    events = ingest_corpus(200, "crash")  # each stage is killed well before the last of them (40, 60, 60 done)
    publish(pipeline, events)
    for stage, after in (("chunker", 40), ("embedder", 60), ("indexer", 60)):
        when(partial(_processed_at_least, pipeline, stage, after), f"{stage} progress")
        victim = pipeline.worker(stage)
        victim.signal(signal.SIGKILL)
        assert victim.wait_stopped(5)
        pipeline.start_worker(stage)
    # About 900 chunks to embed: on 27 Nov's slower CI machine the embedder did 9 chunks/s (512-chunk batches of
    # 55 s), so the wait allows far more than the default 180 s.
    wait_indexed(pipeline, {(e.tenant, e.doc_id): e.version for e in events}, timeout_s=600)
    pipeline.wait_drained()
    assert_index_exact(pipeline, events)


def test_sigterm_finishes_the_batch_commits_and_exits_quickly(fresh_pipeline: Pipeline) -> None:
    pipeline = fresh_pipeline
    events = ingest_corpus(100, "graceful")
    publish(pipeline, events)
    when(lambda: processed(pipeline, "embedder") >= 20, "embedder progress")
    embedder = pipeline.worker("embedder")
    started = time.monotonic()
    embedder.signal(signal.SIGTERM)
    assert embedder.wait_stopped(15)
    assert time.monotonic() - started < 10
    assert embedder.proc is not None
    assert embedder.proc.returncode == 0
    pipeline.start_worker("embedder")
    wait_indexed(pipeline, {(e.tenant, e.doc_id): e.version for e in events}, timeout_s=600)
    pipeline.wait_drained()
    assert_index_exact(pipeline, events)


def batch_sizes(pipeline: Pipeline, stage: str) -> dict[str, float]:
    """The stage's ragbus_stage_batch_size histogram: {"count", "sum", and each bucket's upper bound}."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{pipeline.metrics_ports[stage]}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "ragbus_stage_batch_size":
            for sample in family.samples:
                suffix = sample.name.removeprefix("ragbus_stage_batch_size_")
                found[sample.labels.get("le", suffix)] = sample.value
    return found


def test_a_batch_stops_at_the_chunk_budget_and_the_rest_is_polled_again(
    base_servers: dict[str, str], stack_home: Path
) -> None:
    events = ingest_corpus(40, "budget")
    env = pipeline_env(
        base_servers["kafka"],
        base_servers["milvus-lite"],
        base_servers["redis"],
        RAGBUS_WORKER_MAX_CHUNKS="8",
        RAGBUS_WORKER_MAX_RECORDS="16",
    )
    with running_pipeline(env, stack_home) as pipeline:
        chunks = {len(ids) for ids in expected_chunk_ids(events, pipeline.settings.chunking).values()}
        assert chunks <= {4, 5}, "the corpus is meant to make four or five chunks a document"
        publish(pipeline, events)
        wait_indexed(pipeline, {(e.tenant, e.doc_id): e.version for e in events})
        pipeline.wait_drained()
        assert_index_exact(pipeline, events)
        for stage in ("embedder", "indexer"):
            sizes = batch_sizes(pipeline, stage)
            # Two documents (8 to 10 chunks) fit the budget of 10, a third would not: no batch took more than two.
            assert sizes["2.0"] == sizes["count"], (stage, sizes)
            # Every record processed exactly once: the rest of a cut poll was polled again, not dropped or redone.
            assert sizes["sum"] == len(events), (stage, sizes)
            assert pipeline.metric(stage, "ragbus_stage_deferred_records_total") > 0
        chunker = batch_sizes(pipeline, "chunker")
        assert chunker["sum"] == len(events)


def test_milvus_and_redis_outages_of_10s_lose_and_duplicate_nothing(
    base_servers: dict[str, str], stack_home: Path, tmp_path: Path
) -> None:
    milvus_port, redis_port = free_port(), free_port()
    servers: dict[str, ManagedProcess] = {
        "milvus": start_milvus_lite(tmp_path, milvus_port),
        "redis": start_redis(tmp_path, redis_port),
    }
    env = pipeline_env(base_servers["kafka"], f"http://127.0.0.1:{milvus_port}", f"redis://127.0.0.1:{redis_port}/0")
    pipeline = Pipeline(env=env, home=stack_home)
    try:
        pipeline.start_workers()
        events = ingest_corpus(200, "outage")
        publish(pipeline, events[:100])
        when(lambda: processed(pipeline, "indexer") >= 10, "indexing under way")
        servers["milvus"].stop()
        publish(pipeline, events[100:150])  # keeps arriving while Milvus is down
        time.sleep(10)
        servers["milvus"] = start_milvus_lite(tmp_path, milvus_port)
        when(lambda: processed(pipeline, "indexer") >= 30, "indexing resumed after Milvus")
        servers["redis"].stop()
        publish(pipeline, events[150:])
        time.sleep(10)
        servers["redis"] = start_redis(tmp_path, redis_port)
        wait_indexed(pipeline, {(e.tenant, e.doc_id): e.version for e in events})
        pipeline.wait_drained()
        assert_index_exact(pipeline, events)
        assert pipeline.metric("indexer", "ragbus_stage_transient_retries_total") > 0
        assert pipeline.metric("embedder", "ragbus_stage_transient_retries_total") > 0
        assert pipeline.metric("chunker", "ragbus_dead_lettered_total") == 0
    finally:
        pipeline.stop_workers()
        stop_all(list(servers.values()), timeout_s=10)


def test_an_output_too_large_for_one_kafka_record_travels_in_parts_and_nothing_stalls(
    base_servers: dict[str, str], stack_home: Path
) -> None:
    # 60k characters pass the documents and chunks topics under a 150 kB record limit, but their embedded form
    # (about 2 kB of vector per chunk) does not fit one record. It used to be dead-lettered (message_too_large); it
    # now travels in parts (ragbus.record_parts): the whole document is indexed, nothing is dead-lettered, and the
    # document after it on the topic is indexed too.
    env = pipeline_env(
        base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"],
        RAGBUS_KAFKA_MAX_MESSAGE_BYTES="150000",
    )  # fmt: skip
    with running_pipeline(env, stack_home) as pipeline:
        sentences = " ".join(f"Clause {i} of the harbour charter sets the mooring fee." for i in range(1100))
        too_big = DocumentEvent(doc_id="charter.md", text=sentences)
        small = DocumentEvent(doc_id="small.md", text="A short note about the harbour.")
        assert 50_000 < len(too_big.text) < 100_000
        wait_indexed(pipeline, dict(publish(pipeline, [too_big, small])))
        pipeline.wait_drained()
        assert asyncio.run(list_dead_letters(pipeline.settings, "embedder")) == []
        rows = chunks_of(pipeline, "charter.md")
        assert len(rows) > 75  # over 150 kB embedded at about 2 kB a chunk
        assert sorted(int(r["chunk_index"]) for r in rows) == list(range(len(rows)))  # type: ignore[call-overload]
        assert {r["version"] for r in rows} == {too_big.version}
