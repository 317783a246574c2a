"""Which chunk ids the indexer removes: every recorded chunk set but the version being written."""

from __future__ import annotations

from schemas.chunks import chunk_id_for
from workers.indexer.applier import stale_chunk_ids

DOC = ("default", "handbook/onboarding.md")


def test_stale_chunk_ids_keep_only_the_version_being_written() -> None:
    tenant, doc_id = DOC
    assert stale_chunk_ids(tenant, doc_id, {}, (1, 2)) == []
    assert stale_chunk_ids(tenant, doc_id, {1: 2}, (1, 2)) == []
    assert stale_chunk_ids(tenant, doc_id, {1: 3}, (1, 2)) == [chunk_id_for(tenant, doc_id, 1, 2)]
    assert stale_chunk_ids(tenant, doc_id, {1: 1, 2: 2}, None) == [
        chunk_id_for(tenant, doc_id, 1, 0),
        chunk_id_for(tenant, doc_id, 2, 0),
        chunk_id_for(tenant, doc_id, 2, 1),
    ]
