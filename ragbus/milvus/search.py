"""Reads of the chunk collection: dense and hybrid (BM25 + dense) search, indexed versions, chunk counts."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
from pymilvus import AnnSearchRequest, RRFRanker

from ragbus.errors import TransientError
from ragbus.milvus.bm25 import SPARSE_FIELD
from ragbus.milvus.connection import MilvusConnection
from ragbus.milvus.failures import MISSING_COLLECTION
from ragbus.milvus.filters import MetadataWhere, milvus_str
from ragbus.milvus.rows import DYNAMIC_OUTPUT_FIELDS, OUTPUT_FIELDS, ChunkHit, to_hit
from ragbus.milvus.schema import has_bm25, has_metadata_fields
from ragbus.settings import MilvusSettings

log = logging.getLogger(__name__)


def search(
    connection: MilvusConnection,
    vector: list[float],
    top_k: int,
    tenant: str,
    where: MetadataWhere | None = None,
    *,
    collection: str | None = None,
    text: str | None = None,
    rrf_k: int = 60,
    written: int | None = None,
) -> list[ChunkHit]:
    """The `top_k` chunks of `tenant` closest to `vector`; [] when nothing is indexed yet (MilvusChunkStore.search)."""
    texts = [text] if text and text.strip() else None
    return search_many(
        connection, [vector], top_k, tenant, where, collection=collection, texts=texts, rrf_k=rrf_k, written=written
    )[0]


def search_many(
    connection: MilvusConnection,
    vectors: list[list[float]],
    top_k: int,
    tenant: str,
    where: MetadataWhere | None = None,
    *,
    collection: str | None = None,
    texts: list[str] | None = None,
    rrf_k: int = 60,
    written: int | None = None,
) -> list[list[ChunkHit]]:
    """`search` for several questions of one shape in one call: the hits of each vector (and text), in order.

    `texts`: one non-blank text per vector for hybrid retrieval (where the collection has BM25), or None.
    """
    if texts is not None and len(texts) != len(vectors):
        raise ValueError(f"{len(texts)} texts for {len(vectors)} vectors")
    if collection:
        try:
            expr = _filter(connection, collection, tenant, where)
            read_at = consistency(connection, written)
            return _search(connection, collection, vectors, top_k, expr, texts, rrf_k, where=where, read_at=read_at)
        except TransientError as exc:
            if not MISSING_COLLECTION.search(str(exc)):
                raise
            log.warning(
                "collection %s is gone (pruned?): searching through alias %s (%s)", collection, connection.alias, exc
            )
    if connection.alias_target() is None:
        return [[] for _ in vectors]
    expr = _filter(connection, connection.alias, tenant, where)  # a mark names a collection, not the alias
    return _search(connection, connection.alias, vectors, top_k, expr, texts, rrf_k, where=where)


def consistency(connection: MilvusConnection, written: int | None = None) -> dict[str, Any]:
    """A search's consistency arguments: at the write mark `written` where there is one (ragbus.write_marks), else
    at RAGBUS_MILVUS_CONSISTENCY_LEVEL."""
    if written:
        return {"consistency_level": "Customized", "guarantee_timestamp": written}
    return {"consistency_level": connection.settings.consistency_level}


def indexed_versions(connection: MilvusConnection, tenant: str, doc_ids: Iterable[str]) -> dict[str, set[int]]:
    """Versions currently indexed for each of `doc_ids` (a doc absent from the result is not indexed)."""
    ids = list(doc_ids)
    if not ids:
        return {}
    expr = f"tenant == {milvus_str(tenant)} and doc_id in [{', '.join(milvus_str(d) for d in ids)}]"
    rows = connection.call(
        lambda: connection.client.query(connection.alias, filter=expr, output_fields=["doc_id", "version"])
    )
    found: dict[str, set[int]] = {}
    for row in rows:
        found.setdefault(row["doc_id"], set()).add(int(row["version"]))
    return found


def count_document_chunks(connection: MilvusConnection, tenant: str, doc_id: str, version: int) -> int:
    """Searchable chunks of one version of a document."""
    expr = f"tenant == {milvus_str(tenant)} and doc_id == {milvus_str(doc_id)} and version == {int(version)}"
    rows = connection.call(lambda: connection.client.query(connection.alias, filter=expr, output_fields=["count(*)"]))
    return int(rows[0]["count(*)"]) if rows else 0


def count_chunks(connection: MilvusConnection, tenant: str | None = None) -> int:
    """Chunks in the aliased collection (optionally of one tenant)."""
    expr = f"tenant == {milvus_str(tenant)}" if tenant else 'chunk_id != ""'
    rows = connection.call(lambda: connection.client.query(connection.alias, filter=expr, output_fields=["count(*)"]))
    return int(rows[0]["count(*)"]) if rows else 0


def _filter(connection: MilvusConnection, target: str, tenant: str, where: MetadataWhere | None) -> str:
    own = f"tenant == {milvus_str(tenant)}"
    return f"{own} and {where.expression(has_metadata_fields(connection, target))}" if where else own


def _search(  # noqa: PLR0917 - the one place a search is assembled
    connection: MilvusConnection,
    target: str,
    vectors: list[list[float]],
    top_k: int,
    expr: str,
    texts: list[str] | None,
    rrf_k: int,
    *,
    where: MetadataWhere | None = None,
    read_at: dict[str, Any] | None = None,
) -> list[list[ChunkHit]]:
    read_at = read_at or consistency(connection)
    if texts and has_bm25(connection, target):
        found = _hybrid_search(connection, target, vectors, top_k, expr, texts, rrf_k, where=where, read_at=read_at)
    else:
        found = _dense_search(connection, target, vectors, top_k, expr, where=where, read_at=read_at)
    return [newest_versions_only(hits) for hits in found]


def dense_params(settings: MilvusSettings, top_k: int) -> dict[str, Any]:
    """Search parameters of the dense field: cosine, and the HNSW breadth where one is set (never below top_k, which
    the engine refuses)."""
    params: dict[str, Any] = {"metric_type": "COSINE"}
    if settings.search_ef:
        params["params"] = {"ef": max(settings.search_ef, top_k)}
    return params


def _dense_search(
    connection: MilvusConnection,
    target: str,
    vectors: list[list[float]],
    top_k: int,
    expr: str,
    *,
    where: MetadataWhere | None = None,
    read_at: dict[str, Any],
) -> list[list[ChunkHit]]:
    result = connection.call(
        lambda: connection.client.search(
            target,
            data=vectors,
            limit=top_k,
            filter=expr,
            output_fields=_fields(connection, target, OUTPUT_FIELDS, where),
            search_params=dense_params(connection.settings, top_k),
            **read_at,
        )
    )
    return [[to_hit(hit) for hit in _typed(hits, where)] for hits in _per_query(result, len(vectors))]


def _per_query(result: Any, queries: int) -> list[Any]:
    """Each query's hits of a search result (a result without rows has none for any)."""
    rows = list(result or [])
    if rows and len(rows) != queries:
        raise TransientError(f"Milvus answered {len(rows)} result lists for {queries} queries")
    return rows or [[] for _ in range(queries)]


def newest_versions_only(hits: list[ChunkHit]) -> list[ChunkHit]:
    """The hits without those of a document version older than another hit of the same document.

    The indexer writes a new version's chunks before it removes the earlier version's (so a document is never
    absent), and a search in between can find both: the older text is never cited beside the newer one.
    """
    newest: dict[tuple[str, str], int] = {}
    for hit in hits:
        key = (hit.tenant, hit.doc_id)
        newest[key] = max(hit.version, newest.get(key, hit.version))
    return [hit for hit in hits if hit.version == newest[(hit.tenant, hit.doc_id)]]


def _hybrid_search(  # noqa: PLR0917
    connection: MilvusConnection,
    target: str,
    vectors: list[list[float]],
    top_k: int,
    expr: str,
    texts: list[str],
    rrf_k: int,
    *,
    where: MetadataWhere | None = None,
    read_at: dict[str, Any],
) -> list[list[ChunkHit]]:
    requests = [
        AnnSearchRequest(
            data=vectors, anns_field="embedding", param=dense_params(connection.settings, top_k), limit=top_k, expr=expr
        ),
        AnnSearchRequest(data=texts, anns_field=SPARSE_FIELD, param={"metric_type": "BM25"}, limit=top_k, expr=expr),
    ]
    result = connection.call(
        lambda: connection.client.hybrid_search(
            target,
            requests,
            RRFRanker(rrf_k),
            limit=top_k,
            output_fields=_fields(connection, target, [*OUTPUT_FIELDS, "embedding"], where),
            **read_at,
        )
    )
    # Fused order and score; `score` stays the cosine to the query (what the extractive cut expects).
    return [
        [
            dataclasses.replace(
                to_hit(hit), score=float(np.dot(vector, hit["entity"]["embedding"])), fused=float(hit["distance"])
            )
            for hit in _typed(hits, where)
        ]
        for vector, hits in zip(vectors, _per_query(result, len(vectors)), strict=True)
    ]


def _fields(connection: MilvusConnection, target: str, fields: list[str], where: MetadataWhere | None) -> list[str]:
    # The citation fields are dynamic: a collection made without dynamic fields (the layout before metadata fields)
    # has none, and the real engine refuses an output field it does not have ("field cite_page not exist").
    if not has_metadata_fields(connection, target):
        fields = [f for f in fields if f not in DYNAMIC_OUTPUT_FIELDS]
    return [*fields, "metadata"] if where else fields


def _typed(hits: Iterable[dict[str, Any]], where: MetadataWhere | None) -> list[dict[str, Any]]:
    # Milvus (lite) compares JSON values loosely (`== true` also matches 1): the hits are checked again with strict
    # types, so a boolean filter never returns a number and a number filter never a boolean.
    return [hit for hit in hits if where is None or where.matches(hit["entity"].get("metadata") or {})]
