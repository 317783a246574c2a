"""Write marks (ragbus.write_marks): the API reads at the indexer's last write instead of waiting for Strong's tick.

On each engine (milvus-lite, then the real one), versions are applied the way the indexer applies them, and a search
at the timestamp the write returned must see every write of that batch at once: the new chunks, and none of the
removed ones. On the real engine the same search without the mark (Eventually) is shown to miss them, so the test
proves the mark does the work. The marks themselves are kept in real Redis.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from fastapi.testclient import TestClient

from ragbus.milvus.store import MilvusChunkStore
from ragbus.redis_store import KeySpace, open_redis
from ragbus.write_marks import WriteMarks
from schemas.embeddings import EmbeddedDocument, unpack_vector
from tests.embedded_versions import DIM, deletion, version
from tests.stack_fixtures import Pipeline
from workers.indexer.applier import VersionApplier

pytestmark = [pytest.mark.integration]
DOC = ("default", "handbook/marks.md")
ROUNDS = 12


def applied(applier: VersionApplier, collection: str, doc: EmbeddedDocument) -> int:
    """Apply one version as the indexer does; the write's timestamp (0: none)."""
    fresh, known = applier.fresh(collection, [doc])
    assert fresh == [doc]
    return applier.apply(collection, fresh, known).written


def first_vector(doc: EmbeddedDocument) -> list[float]:
    """The vector of the document's first chunk: its own chunks are the closest hits."""
    return list(unpack_vector(doc.chunks[0].vector))


def test_a_search_at_the_write_mark_sees_the_whole_batch(
    chunk_store: MilvusChunkStore, scratch_collection: str
) -> None:
    chunk_store.ensure_collection(scratch_collection, DIM)
    applier = VersionApplier(chunk_store, "indexer")
    stamps = []
    for number in range(1, ROUNDS + 1):
        doc = version(number, 2, DOC)
        written = applied(applier, scratch_collection, doc)
        stamps.append(written)
        # At the mark (or, where the engine stamps nothing, at the configured Strong): the new version at once,
        # and nothing of the one it replaced, removed in the same batch.
        hits = chunk_store.search(first_vector(doc), 10, "default", collection=scratch_collection, written=written)
        assert {hit.version for hit in hits if hit.doc_id == DOC[1]} == {number}
    last = version(ROUNDS, 2, DOC)
    written = applied(applier, scratch_collection, deletion(ROUNDS + 1, DOC))
    hits = chunk_store.search(first_vector(last), 10, "default", collection=scratch_collection, written=written)
    assert not [hit for hit in hits if hit.doc_id == DOC[1]], "a deleted document is found at its delete's mark"
    if any(stamps):  # the real engine; milvus-lite stamps nothing and is read at RAGBUS_MILVUS_CONSISTENCY_LEVEL
        assert stamps == sorted(stamps) and len(set(stamps)) == ROUNDS and written > stamps[-1], stamps


def test_without_the_mark_the_real_engine_reads_stale_chunks(
    chunk_store: MilvusChunkStore, scratch_collection: str
) -> None:
    # What the mark is for: right after a write, an Eventually read of the real engine misses it.
    chunk_store.ensure_collection(scratch_collection, DIM)
    applier = VersionApplier(chunk_store, "indexer")
    stale = 0
    for number in range(1, ROUNDS + 1):
        doc = version(number, 2, DOC)
        if not applied(applier, scratch_collection, doc):
            pytest.skip("this engine stamps no write (milvus-lite): nothing to read at")
        result = chunk_store.client.search(
            scratch_collection, data=[first_vector(doc)], limit=10, output_fields=["version"],
            consistency_level="Eventually",
        )  # fmt: skip
        stale += {int(hit["entity"]["version"]) for hit in result[0]} != {number}
    assert stale > 0, "every Eventually read saw the write at once: this test could not tell a mark from none"


@pytest.mark.one_engine
def test_marks_keep_the_latest_write_per_uri(pipeline: Pipeline) -> None:
    async def run() -> None:
        client = open_redis(pipeline.settings.redis)
        marks = WriteMarks(client, KeySpace(f"marks-{uuid.uuid4().hex[:8]}"))
        try:
            assert await marks.read("chunks_v1", ["http://a:19530"]) == {}
            await marks.record("chunks_v1", "http://a:19530", 470961626366869513)
            await marks.record("chunks_v1", "http://a:19530", 470961626366869000)  # an earlier batch, later
            await marks.record("chunks_v1", "http://a:19530", 99)  # shorter: earlier, whatever the digits
            await marks.record("chunks_v1", "http://b:19530", 470961626366869514)
            await marks.record("chunks_v2", "http://a:19530", 5)
            read = await marks.read("chunks_v1", ["http://a:19530", "http://b:19530", "http://c:19530"])
            assert read == {"http://a:19530": 470961626366869513, "http://b:19530": 470961626366869514}
            await marks.record("chunks_v1", "http://a:19530", 1470961626366869513)  # longer: later
            assert await marks.read("chunks_v1", ["http://a:19530"]) == {"http://a:19530": 1470961626366869513}
            with pytest.raises(ValueError, match="positive"):
                await marks.record("chunks_v1", "http://a:19530", 0)
            # A batch whose writes carried no timestamp: the older mark must not stand for them.
            await marks.forget("chunks_v1", "http://a:19530")
            assert await marks.read("chunks_v1", ["http://a:19530", "http://b:19530"]) == {
                "http://b:19530": 470961626366869514
            }
        finally:
            await client.aclose()

    asyncio.run(run())


def test_the_indexer_marks_what_the_api_reads_at(
    pipeline: Pipeline, api: TestClient, indexed_corpus: list[object], base_servers: dict[str, str]
) -> None:
    # The pipeline's indexer recorded a mark for the serving collection on its URI where the engine stamps writes,
    # and every answer says in its Server-Timing how long reading the marks and searching took.
    settings, engine_lite = pipeline.settings, base_servers["milvus-lite"]
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        collection = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        try:
            serving = collection.alias_target()
        finally:
            collection.close()
        assert serving
        marks = client.hgetall(KeySpace(settings.redis.namespace).milvus_writes(serving))
    finally:
        client.close()
    if marks:  # the real engine stamps its writes; milvus-lite does not, and is read at the configured level
        assert list(marks) == [settings.milvus_uri.encode()]
        assert int(marks[settings.milvus_uri.encode()]) > 0
    else:
        assert settings.milvus_uri == engine_lite
    response = api.post("/v1/query", json={"query": f"koalas {uuid.uuid4().hex}", "top_k": 3, "retrieve_only": True})
    assert response.status_code == 200
    timing = response.headers["server-timing"]
    for stage in ("cache", "encode", "marks", "search", "total"):
        assert f"{stage};dur=" in timing, timing
