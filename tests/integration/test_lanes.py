"""Live and bulk lanes on real servers (milvus-lite): a live edit never waits behind a bulk load.

One pipeline for the module, with batches of 4 records, so a bulk of a few hundred short documents takes many
batches in every stage: long enough to publish a live change while it is in flight.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragbus.document_follower import pending_documents
from ragbus.document_publisher import publish_documents
from ragbus.milvus.store import MilvusChunkStore
from schemas.documents import DocumentEvent, DocumentOp
from schemas.topics import STAGES, Lane
from tests.integration.test_resilience import assert_index_exact
from tests.pipeline_helpers import wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.one_engine, pytest.mark.slow]
PLACES = ["harbour", "orchard", "glacier", "library", "volcano", "bakery", "observatory", "vineyard", "canal", "mill"]
Versions = dict[tuple[str, str], int | None]


@pytest.fixture(scope="module")
def lanes(base_servers: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    env = pipeline_env(
        base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"], RAGBUS_WORKER_MAX_RECORDS="4"
    )
    with running_pipeline(env, stack_home) as pipeline:
        yield pipeline


def documents(count: int, prefix: str, version: int | None = None, note: str = "") -> list[DocumentEvent]:
    """Short documents (one chunk each) about ledgers of places."""
    fields = {"version": version} if version is not None else {}
    return [
        DocumentEvent(
            doc_id=f"{prefix}/{i:04d}.md",
            title=f"{PLACES[i % len(PLACES)]} ledger {i}",
            text=f"The {PLACES[i % len(PLACES)]} ledger entry {i} records shipment {i * 31}. {note}".strip(),
            **fields,
        )
        for i in range(count)
    ]


def publish(pipeline: Pipeline, events: list[DocumentEvent], lane: Lane) -> Versions:
    report = asyncio.run(publish_documents(pipeline.settings, events, lane=lane))
    assert report.topic == pipeline.settings.kafka.topic_prefix + (
        ".documents.bulk.v1" if lane is Lane.BULK else ".documents.v1"
    )
    return dict(report.versions)


def still_pending(pipeline: Pipeline, expected: Versions) -> set[tuple[str, str]]:
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        return pending_documents(store, expected)
    finally:
        store.close()


def bulk_indexed(pipeline: Pipeline) -> float:
    try:
        return pipeline.metric("indexer", 'ragbus_lane_records_total{lane="bulk"')
    except OSError:
        return 0.0


def test_a_live_change_is_searchable_while_a_bulk_is_still_in_flight(lanes: Pipeline) -> None:
    bulk = documents(400, "bulk")
    bulk_versions = publish(lanes, bulk, Lane.BULK)
    wait_for(lambda: bulk_indexed(lanes) >= 8, timeout_s=120, interval_s=0.1, message="the bulk reaching the index")
    live = DocumentEvent(doc_id="live/kea.md", title="Kea", text="The kea is an alpine parrot of New Zealand.")
    started = time.monotonic()
    wait_indexed(lanes, publish(lanes, [live], Lane.LIVE), timeout_s=60)
    took = time.monotonic() - started
    behind = still_pending(lanes, bulk_versions)
    # The live document went ahead of the bulk in every stage: most of the bulk, its last document included, waits.
    assert (bulk[-1].tenant, bulk[-1].doc_id) in behind, f"live took {took:.1f}s, the bulk was done first"
    assert len(behind) > len(bulk) // 2, f"live took {took:.1f}s; only {len(behind)} bulk documents left"
    for stage in STAGES:  # each stage timed the live record's wait at its input apart from the bulk records'
        waited = "ragbus_lane_wait_seconds_count{lane="
        assert lanes.metric(stage, waited + f'"live",stage="{stage}"}}') >= 1, stage
        assert lanes.metric(stage, waited + f'"bulk",stage="{stage}"}}') >= 8, stage
    wait_indexed(lanes, bulk_versions, timeout_s=300)
    assert still_pending(lanes, {(live.tenant, live.doc_id): live.version}) == set()


def test_interleaved_bulk_and_live_events_end_at_the_newest_version(lanes: Pipeline) -> None:
    count = 40
    v1 = documents(count, "mixed", version=1_000, note="first load")
    v2 = documents(count, "mixed", version=2_000, note="live edit")[: count // 2]
    v3 = documents(count, "mixed", version=3_000, note="second load")[count // 4 :]
    late_old = documents(count, "mixed", version=1_500, note="a stale bulk copy")  # older than every live edit
    deleted = DocumentEvent(op=DocumentOp.DELETE, doc_id=v1[0].doc_id, version=4_000)
    publish(lanes, documents(200, "filler"), Lane.BULK)  # keeps the bulk lane busy while the rest interleaves
    publish(lanes, v1, Lane.BULK)
    publish(lanes, v2, Lane.LIVE)
    publish(lanes, v3, Lane.BULK)
    publish(lanes, [deleted], Lane.LIVE)
    publish(lanes, late_old, Lane.BULK)
    newest = {e.doc_id: e for e in [*v1, *v2, *v3]}  # later lists hold the higher versions
    del newest[deleted.doc_id]
    expected: Versions = {(e.tenant, e.doc_id): e.version for e in newest.values()}
    expected[(deleted.tenant, deleted.doc_id)] = None
    wait_indexed(lanes, expected, timeout_s=300)
    lanes.wait_drained()
    assert_index_exact(lanes, list(newest.values()))  # each document once, at its newest version, nothing lost
    assert still_pending(lanes, expected) == set()  # the stale bulk copies (v1.5) changed nothing


def test_sigkill_of_the_embedder_during_a_bulk_with_live_changes_loses_nothing(lanes: Pipeline) -> None:
    bulk = documents(300, "crash", note="bulk")
    publish(lanes, bulk, Lane.BULK)
    wait_for(lambda: lanes.metric("embedder", "ragbus_lane_records_total") >= 40, timeout_s=120, interval_s=0.05,
             message="the embedder working through the bulk")  # fmt: skip
    edits = documents(300, "crash", note="live edit")[::30]
    publish(lanes, edits, Lane.LIVE)
    victim = lanes.worker("embedder")
    victim.signal(signal.SIGKILL)
    assert victim.wait_stopped(5)
    lanes.start_worker("embedder")
    newest = {e.doc_id: e for e in [*bulk, *edits]}
    wait_indexed(lanes, {(e.tenant, e.doc_id): e.version for e in newest.values()}, timeout_s=300)
    lanes.wait_drained()
    assert_index_exact(lanes, list(newest.values()))
