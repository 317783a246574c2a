"""A document version too large for one Kafka record travels in parts, end to end, on real servers (both engines).

At RAGBUS_KAFKA_MAX_MESSAGE_BYTES=10000 (the lowest allowed) and 32-token chunks, a 6 KB page leaves the chunker in
a few records and the embedder (about 2 KB of vector a chunk) in a dozen or more: every chunk is indexed once, an
update replaces them all, a delete removes them, and nothing is dead-lettered. Until all of a version's chunks
are in, the version does not count as indexed (read-your-writes and `publish --wait`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ragbus.cli.doc import render
from ragbus.dead_letters import list_dead_letters
from ragbus.document_follower import pending_documents, versions_behind
from ragbus.document_status import Arriving, DocumentStatus, indexed_state
from ragbus.milvus.document_states import PARTS_PENDING, DocumentState, MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from ragbus.record_parts import encode_in_parts
from schemas.chunks import ChunkedDocument
from schemas.codec import decode
from schemas.documents import DocumentEvent, DocumentOp
from schemas.embeddings import EmbeddedDocument
from schemas.topics import STAGES, Topics
from tests.embedded_versions import version
from tests.pipeline_helpers import chunks_of, publish, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline
from tests.topic_reader import TopicReader
from workers.indexer.applier import VersionApplier

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DOC = "handbook/long.md"
PLACES = ["harbour", "orchard", "glacier", "library", "volcano", "bakery", "observatory", "vineyard", "canal", "mill"]


def page(sentences: int, edition: str) -> str:
    return " ".join(
        f"In the {edition} edition, the {PLACES[i % len(PLACES)]} ledger entry {i} records shipment {i * 37} "
        f"of {PLACES[(i * 3) % len(PLACES)]} goods."
        for i in range(sentences)
    )


def test_a_version_too_large_for_one_record_is_indexed_replaced_and_deleted_in_parts(
    engine: str, base_servers: dict[str, str], stack_home: Path
) -> None:
    env = pipeline_env(
        base_servers["kafka"], engine, base_servers["redis"],
        RAGBUS_KAFKA_MAX_MESSAGE_BYTES="10000", RAGBUS_CHUNK_TOKENS="32", RAGBUS_CHUNK_OVERLAP="8",
    )  # fmt: skip
    with running_pipeline(env, stack_home) as pipeline:
        settings = pipeline.settings
        topics = Topics(settings.kafka.topic_prefix)
        chunked, embedded = TopicReader(settings, topics.chunks), TopicReader(settings, topics.embedded)
        first = DocumentEvent(doc_id=DOC, title="Ledgers", text=page(60, "first"))
        wait_indexed(pipeline, dict(publish(pipeline, [first])))

        parts = [decode(r.value, EmbeddedDocument) for r in embedded.records()]
        total = parts[0].chunk_total
        assert total is not None and len(parts) >= 10, [len(p.chunks) for p in parts]
        assert [c.index for p in parts for c in p.chunks] == list(range(total))
        assert len([r for r in chunked.records() if decode(r.value, ChunkedDocument).chunk_total == total]) >= 2
        rows = chunks_of(pipeline, DOC)
        assert sorted(int(r["chunk_index"]) for r in rows) == list(range(total))  # type: ignore[call-overload]
        assert {r["version"] for r in rows} == {first.version}

        second = DocumentEvent(doc_id=DOC, title="Ledgers", text=page(40, "second"))
        wait_indexed(pipeline, dict(publish(pipeline, [second])))
        rows = chunks_of(pipeline, DOC)
        assert {r["version"] for r in rows} == {second.version}
        assert len(rows) < total and sorted(int(r["chunk_index"]) for r in rows) == list(range(len(rows)))  # type: ignore[call-overload]

        gone = DocumentEvent(doc_id=DOC, op=DocumentOp.DELETE)
        wait_indexed(pipeline, {("default", DOC): None} | dict.fromkeys(publish(pipeline, [gone])))
        assert chunks_of(pipeline, DOC) == []
        for stage in STAGES:
            assert asyncio.run(list_dead_letters(settings, stage)) == [], stage


KEY = ("default", DOC)


@contextmanager
def v1_served(engine: str, base_servers: dict[str, str], stack_home: Path) -> Iterator[tuple[MilvusChunkStore, str]]:
    """The served collection of a fresh deployment, holding v1 of DOC (3 chunks), and a store on it."""
    env = pipeline_env(base_servers["kafka"], engine, base_servers["redis"])
    settings = Pipeline(env=env, home=stack_home).settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        collection = store.ensure_alias(settings.milvus.initial_collection, 384)
        VersionApplier(store, "indexer").apply(collection, [version(1, 3, KEY)], {})
        yield store, collection
    finally:
        store.close()


def parts(number: int, chunks: int) -> list[EmbeddedDocument]:
    """Version `number` of DOC with `chunks` chunks, as the embedder sends it in parts of at most 12,000 bytes."""
    return [decode(r, EmbeddedDocument) for r in encode_in_parts(version(number, chunks, KEY), 12_000)]


def apply_as_indexer(store: MilvusChunkStore, collection: str, part: EmbeddedDocument) -> None:
    applier = VersionApplier(store, "indexer")
    fresh, known = applier.fresh(collection, [part])
    applier.apply(collection, fresh, known)


def status_of(store: MilvusChunkStore) -> DocumentStatus:
    """What the index says of DOC (`ragbus doc`, GET /v1/documents/...), Kafka left out."""
    status = DocumentStatus("default", DOC)
    indexed_state(store, status)
    return status


def test_a_version_in_parts_is_not_indexed_until_its_last_part_is(
    engine: str, base_servers: dict[str, str], stack_home: Path
) -> None:
    """The parts applied as the indexer applies them, into the served collection of a fresh deployment; the
    document's status shows the version arriving."""
    with v1_served(engine, base_servers, stack_home) as (store, collection):
        assert versions_behind(store, "default", {DOC: 1}) == {}
        first, *rest = parts(2, 12)
        assert rest
        apply_as_indexer(store, collection, first)
        # Chunks of v2 are searchable, but v2 is not whole: it is behind, and v1 is what is whole.
        assert versions_behind(store, "default", {DOC: 2}) == {DOC: 1}
        assert versions_behind(store, "default", {DOC: 1}) == {}
        assert pending_documents(store, {KEY: 2}) == {KEY}
        # Where the document stands: v1 whole, v2 arriving with its count.
        status = status_of(store)
        assert (status.indexed_version, status.chunks) == (1, 3)
        assert status.arriving == Arriving(2, len(first.chunks), 12)
        assert any("arriving in parts: version 2" in line for line in render(status))
        for part in rest:
            apply_as_indexer(store, collection, part)
        assert versions_behind(store, "default", {DOC: 2}) == {}
        assert pending_documents(store, {KEY: 2}) == set()
        status = status_of(store)
        assert (status.indexed_version, status.chunks, status.arriving) == (2, 12, None)


def test_a_documents_status_names_only_a_whole_version_as_indexed(
    engine: str, base_servers: dict[str, str], stack_home: Path
) -> None:
    """v2 never became whole (a part dead-lettered, say) before v3 started arriving: v1 is what is indexed."""
    with v1_served(engine, base_servers, stack_home) as (store, collection):
        for number in (2, 3):
            first = parts(number, 12)[0]
            apply_as_indexer(store, collection, first)
        status = status_of(store)
        assert (status.indexed_version, status.chunks) == (1, 3)
        assert status.arriving == Arriving(3, len(first.chunks), 12)
        assert versions_behind(store, "default", {DOC: 3}) == {DOC: 1}
        # A delete's state before its removal is done still carries the mark: the status reads the delete.
        states = MilvusDocumentStates(store)
        states.put(collection, [DocumentState("default", DOC, 4, True, {1: 3, 2: 12, 3: 12, PARTS_PENDING: 0})])
        status = status_of(store)
        assert (status.indexed_version, status.deleted, status.arriving) == (4, True, None)
