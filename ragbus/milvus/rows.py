"""Rows and hits: a document's chunks as rows of the chunk collection, and search results as ChunkHits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragbus.milvus.filters import md_fields_of
from schemas.embeddings import EmbeddedChunk, EmbeddedDocument, unpack_vector

# The fields a search returns for each hit.
OUTPUT_FIELDS = ["chunk_id", "doc_id", "version", "tenant", "title", "text", "chunk_index", "source"]


@dataclass(frozen=True)
class ChunkHit:
    """One search result."""

    chunk_id: str
    doc_id: str
    version: int
    tenant: str
    title: str
    text: str
    chunk_index: int
    source: str
    score: float


def chunk_row(doc: EmbeddedDocument, chunk: EmbeddedChunk, dynamic: bool) -> dict[str, Any]:
    """The row of one chunk; with `dynamic`, its metadata copied into md_<key> fields too."""
    row = {
        "chunk_id": chunk.chunk_id,
        "doc_id": doc.doc_id,
        "tenant": doc.tenant,
        "version": doc.version,
        "chunk_index": chunk.index,
        "title": doc.title[:1000],
        "text": chunk.text,
        "source": (doc.source or "")[:1000],
        "metadata": doc.metadata,
        "produced_at_ms": int(doc.produced_at.timestamp() * 1000),
        "embedding": unpack_vector(chunk.vector),
    }
    if dynamic:
        row |= md_fields_of(doc.metadata)
    return row


def to_hit(hit: dict[str, Any]) -> ChunkHit:
    """A ChunkHit from one hit of a search result (its `entity` holds OUTPUT_FIELDS)."""
    entity = hit["entity"]
    return ChunkHit(
        chunk_id=entity["chunk_id"],
        doc_id=entity["doc_id"],
        version=int(entity["version"]),
        tenant=entity["tenant"],
        title=entity["title"],
        text=entity["text"],
        chunk_index=int(entity["chunk_index"]),
        source=entity.get("source") or "",
        score=float(hit["distance"]),
    )
