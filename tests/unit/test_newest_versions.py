"""A search that lands between the indexer's write of a new version and its removal of the earlier one."""

from __future__ import annotations

from ragbus.milvus.rows import ChunkHit
from ragbus.milvus.search import newest_versions_only


def hit(doc_id: str, version: int, index: int = 0, tenant: str = "default") -> ChunkHit:
    return ChunkHit(
        chunk_id=f"{doc_id}-{version}-{index}", doc_id=doc_id, version=version, tenant=tenant,
        title="", text=f"{doc_id} v{version}", chunk_index=index, source="", score=0.5,
    )  # fmt: skip


def test_an_older_version_beside_a_newer_one_is_dropped_in_rank_order() -> None:
    hits = [hit("a", 1), hit("b", 7), hit("a", 2, 0), hit("a", 2, 1), hit("c", 3)]
    assert newest_versions_only(hits) == [hits[1], hits[2], hits[3], hits[4]]


def test_an_older_version_alone_stays_and_tenants_are_apart() -> None:
    hits = [hit("a", 1), hit("a", 5, tenant="acme"), hit("b", 2)]
    assert newest_versions_only(hits) == hits
    assert newest_versions_only([]) == []
