"""The indexer's write protocol on the real engines: earlier chunks go by primary key, and a crash strands none.

Each test gets its own chunk collection on the engine under test (milvus-lite, then the real Milvus engine) and
applies document versions the way the indexer does, reading back what the collection holds with Strong queries.
"""

from __future__ import annotations

import pytest

from ragbus.errors import TransientError
from ragbus.milvus.document_states import PARTS_PENDING, DocumentState, MilvusDocumentStates
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.store import MilvusChunkStore
from ragbus.record_parts import encode_in_parts
from schemas.chunks import chunk_id_for
from schemas.codec import decode
from schemas.embeddings import EmbeddedDocument
from tests.embedded_versions import DIM, apply, deletion, version
from workers.indexer.applier import VersionApplier

pytestmark = [pytest.mark.integration]
DOC = ("default", "handbook/onboarding.md")


def stored(store: MilvusChunkStore, collection: str, doc: tuple[str, str] = DOC) -> list[str]:
    """Chunk ids the collection holds for `doc`, read at Strong consistency."""
    rows = store.client.query(
        collection,
        filter=f"tenant == {milvus_str(doc[0])} and doc_id == {milvus_str(doc[1])}",
        output_fields=["chunk_id"],
        consistency_level="Strong",
    )
    return sorted(row["chunk_id"] for row in rows)


def ids(number: int, chunks: int, doc: tuple[str, str] = DOC) -> list[str]:
    return sorted(chunk_id_for(doc[0], doc[1], number, index) for index in range(chunks))


def test_a_new_version_removes_the_earlier_chunks_by_key(
    chunk_store: MilvusChunkStore, scratch_collection: str
) -> None:
    chunk_store.ensure_collection(scratch_collection, DIM)
    applier = VersionApplier(chunk_store, "indexer")
    other = ("default", "handbook/other.md")
    apply(applier, scratch_collection, version(1, 3, DOC), version(5, 2, other))
    assert stored(chunk_store, scratch_collection) == ids(1, 3)
    assert applier.states.get(scratch_collection, [DOC])[DOC].chunks == {1: 3}

    apply(applier, scratch_collection, version(2, 1, DOC))
    assert stored(chunk_store, scratch_collection) == ids(2, 1)
    assert applier.states.get(scratch_collection, [DOC])[DOC].chunks == {2: 1}
    # The same version again, now cut into fewer chunks (a chunking change): the extra chunk goes.
    apply(applier, scratch_collection, version(3, 3, DOC))
    apply(applier, scratch_collection, version(3, 2, DOC))
    assert stored(chunk_store, scratch_collection) == ids(3, 2)
    assert stored(chunk_store, scratch_collection, other) == ids(5, 2, other)  # another document is never touched


def test_a_crash_before_the_removal_strands_no_chunks(
    chunk_store: MilvusChunkStore, scratch_collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunk_store.ensure_collection(scratch_collection, DIM)
    applier = VersionApplier(chunk_store, "indexer")
    apply(applier, scratch_collection, version(1, 3, DOC))

    def server_gone(chunk_ids: list[str], collection: str | None = None) -> None:
        raise TransientError("Milvus went away after the upsert")

    with monkeypatch.context() as patched:
        patched.setattr(chunk_store, "delete_chunks", server_gone)
        with pytest.raises(TransientError):
            apply(applier, scratch_collection, version(2, 2, DOC))
    # Both versions' chunks are in the collection, and the state names both.
    assert stored(chunk_store, scratch_collection) == sorted(ids(1, 3) + ids(2, 2))
    assert applier.states.get(scratch_collection, [DOC])[DOC].chunks == {1: 3, 2: 2}

    # The redelivered batch can bring a newer version than the one that was being applied; the indexer applies only
    # the newest version of each document in a batch, and it removes both earlier sets.
    apply(applier, scratch_collection, version(4, 1, DOC))
    assert stored(chunk_store, scratch_collection) == ids(4, 1)
    assert applier.states.get(scratch_collection, [DOC])[DOC].chunks == {4: 1}


def test_a_delete_removes_every_chunk_and_an_older_upsert_stays_out(
    chunk_store: MilvusChunkStore, scratch_collection: str
) -> None:
    chunk_store.ensure_collection(scratch_collection, DIM)
    applier = VersionApplier(chunk_store, "indexer")
    apply(applier, scratch_collection, version(1, 2, DOC))
    apply(applier, scratch_collection, deletion(2, DOC))
    assert stored(chunk_store, scratch_collection) == []
    state = applier.states.get(scratch_collection, [DOC])[DOC]
    assert (state.version, state.deleted, state.chunks) == (2, True, {})
    assert apply(applier, scratch_collection, version(1, 2, DOC)) == []  # a replayed older upsert is stale
    apply(applier, scratch_collection, deletion(2, DOC))  # the same delete again changes nothing
    assert stored(chunk_store, scratch_collection) == []
    apply(applier, scratch_collection, version(3, 1, DOC))
    assert stored(chunk_store, scratch_collection) == ids(3, 1)


def test_an_upsert_without_chunks_removes_the_earlier_ones(
    chunk_store: MilvusChunkStore, scratch_collection: str
) -> None:
    chunk_store.ensure_collection(scratch_collection, DIM)
    applier = VersionApplier(chunk_store, "indexer")
    other = ("default", "handbook/other.md")
    apply(applier, scratch_collection, version(1, 2, DOC), version(1, 1, other))
    apply(applier, scratch_collection, version(2, 0, DOC), version(2, 2, other))  # two documents in one batch
    assert stored(chunk_store, scratch_collection) == []
    assert stored(chunk_store, scratch_collection, other) == ids(2, 2, other)
    state = applier.states.get(scratch_collection, [DOC])[DOC]
    assert (state.version, state.deleted, state.chunks) == (2, False, {})


def test_states_without_chunk_sets_fall_back_to_the_filtered_delete(
    chunk_store: MilvusChunkStore, scratch_collection: str
) -> None:
    # A state collection as ragbus created it before states recorded chunk sets.
    MilvusDocumentStates(chunk_store).ensure(scratch_collection, record_chunks=False)
    chunk_store.ensure_collection(scratch_collection, DIM)
    applier = VersionApplier(chunk_store, "indexer")
    assert not applier.states.tracks_chunks(scratch_collection)

    apply(applier, scratch_collection, version(1, 3, DOC))
    apply(applier, scratch_collection, version(2, 1, DOC))
    assert stored(chunk_store, scratch_collection) == ids(2, 1)
    assert applier.states.get(scratch_collection, [DOC])[DOC] == DocumentState(DOC[0], DOC[1], 2, False, None)
    apply(applier, scratch_collection, deletion(3, DOC))
    assert stored(chunk_store, scratch_collection) == []


def parts(doc: EmbeddedDocument, max_bytes: int = 12_000) -> list[EmbeddedDocument]:
    """`doc` as the embedder sends a version too large for one record."""
    return [decode(record, EmbeddedDocument) for record in encode_in_parts(doc, max_bytes)]


def test_a_version_in_parts_replaces_the_earlier_one_once_all_its_chunks_are_in(
    chunk_store: MilvusChunkStore, scratch_collection: str
) -> None:
    chunk_store.ensure_collection(scratch_collection, DIM)
    applier = VersionApplier(chunk_store, "indexer")
    apply(applier, scratch_collection, version(1, 4, DOC))
    first, *middle, last = parts(version(2, 12, DOC))
    assert middle, "the version should need at least three records"

    apply(applier, scratch_collection, first)
    # The earlier version still answers while the new one arrives; the state names both whole sets, and that v2 is
    # still arriving.
    assert stored(chunk_store, scratch_collection) == sorted(ids(1, 4) + [c.chunk_id for c in first.chunks])
    assert applier.states.get(scratch_collection, [DOC])[DOC].chunks == {1: 4, 2: 12, PARTS_PENDING: 0}
    # The last part before a middle one (a part dead-lettered, then replayed): v2 is not whole, v1 stays.
    apply(applier, scratch_collection, last)
    assert applier.states.get(scratch_collection, [DOC])[DOC].parts_pending
    assert set(ids(1, 4)) <= set(stored(chunk_store, scratch_collection))
    for part in middle:
        apply(applier, scratch_collection, part)
    assert stored(chunk_store, scratch_collection) == ids(2, 12)
    assert applier.states.get(scratch_collection, [DOC])[DOC].chunks == {2: 12}

    # A part delivered again after the version is whole re-writes its own chunks and leaves it whole.
    apply(applier, scratch_collection, first)
    assert stored(chunk_store, scratch_collection) == ids(2, 12)
    assert applier.states.get(scratch_collection, [DOC])[DOC].chunks == {2: 12}
    # A newer version in fewer chunks, in parts again, leaves only its own.
    for part in parts(version(3, 7, DOC)):
        apply(applier, scratch_collection, part)
    assert stored(chunk_store, scratch_collection) == ids(3, 7)
    # An older version's part arriving late is ignored, as a whole older version is.
    assert apply(applier, scratch_collection, last) == []
    assert stored(chunk_store, scratch_collection) == ids(3, 7)
