"""Writes to a chunk collection: upsert document versions' chunks, delete chunks by id, version or document."""

from __future__ import annotations

from functools import partial

from ragbus.milvus.connection import MilvusConnection
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.rows import chunk_row
from ragbus.milvus.schema import has_metadata_fields
from schemas.embeddings import EmbeddedDocument


def upsert_chunks(connection: MilvusConnection, docs: list[EmbeddedDocument], collection: str | None = None) -> int:
    """Upsert every chunk of these document versions (idempotent: chunk ids are deterministic); rows written."""
    target = collection or connection.alias
    dynamic = bool(docs) and has_metadata_fields(connection, target)
    rows = [chunk_row(doc, chunk, dynamic) for doc in docs for chunk in doc.chunks]
    for start in range(0, len(rows), 512):
        batch = rows[start : start + 512]
        connection.call(partial(connection.client.upsert, target, batch))
    return len(rows)


def delete_chunks(connection: MilvusConnection, chunk_ids: list[str], collection: str | None = None) -> None:
    """Remove chunks by primary key (a lookup, not a scan). Idempotent: an absent id is no error."""
    target = collection or connection.alias
    for start in range(0, len(chunk_ids), 512):
        connection.call(partial(connection.client.delete, target, ids=chunk_ids[start : start + 512]))


def delete_other_versions(
    connection: MilvusConnection, docs: list[EmbeddedDocument], collection: str | None = None
) -> None:
    """Remove the chunks of every version but these, by a filtered delete that scans the collection.

    Only for collections whose document states do not record their chunk sets (created before they did).
    """
    for start in range(0, len(docs), 64):
        stale = " or ".join(
            f"({_doc_filter(doc.tenant, doc.doc_id)} and version != {int(doc.version)})"
            for doc in docs[start : start + 64]
        )
        connection.call(partial(connection.client.delete, collection or connection.alias, filter=stale))


def delete_documents(connection: MilvusConnection, keys: list[tuple[str, str]], collection: str | None = None) -> None:
    """Remove every chunk of each (tenant, doc_id) by a filtered delete (scans the collection). Idempotent."""
    for start in range(0, len(keys), 64):
        expr = " or ".join(f"({_doc_filter(t, d)})" for t, d in keys[start : start + 64])
        connection.call(partial(connection.client.delete, collection or connection.alias, filter=expr))


def _doc_filter(tenant: str, doc_id: str) -> str:
    return f"tenant == {milvus_str(tenant)} and doc_id == {milvus_str(doc_id)}"


def count_version_chunks(connection: MilvusConnection, collection: str, tenant: str, doc_id: str, version: int) -> int:
    """Chunks of one document version in `collection`, read Strong: the writer's own count of what it just wrote."""
    expr = f"tenant == {milvus_str(tenant)} and doc_id == {milvus_str(doc_id)} and version == {int(version)}"
    rows = connection.call(
        partial(
            connection.client.query, collection, filter=expr, output_fields=["count(*)"], consistency_level="Strong"
        )
    )
    return int(rows[0]["count(*)"]) if rows else 0
