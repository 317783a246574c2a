"""Rows and hits: a document's chunks as rows of the chunk collection, and search results as ChunkHits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragbus.milvus.filters import md_fields_of
from schemas.embeddings import EmbeddedChunk, EmbeddedDocument, unpack_vector

# Where a passage sits in its document (PDF page, section path): dynamic fields, so collections made before they
# existed keep their schema and simply return none.
CITE_PAGE, CITE_SECTION = "cite_page", "cite_section"
DYNAMIC_OUTPUT_FIELDS = frozenset({CITE_PAGE, CITE_SECTION})
# The fields a search returns for each hit.
OUTPUT_FIELDS = [
    "chunk_id", "doc_id", "version", "tenant", "title", "text", "chunk_index", "source", CITE_PAGE, CITE_SECTION
]  # fmt: skip


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
    score: float  # cosine similarity to the query
    page: int | None = None
    section: str | None = None
    fused: float | None = None  # hybrid retrieval: the reciprocal-rank-fusion score that ordered the hits

    @property
    def ranking_score(self) -> float:
        """The figure the hits were ordered by: the fused score for hybrid retrieval, else the cosine."""
        return self.score if self.fused is None else self.fused


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
        if chunk.page is not None:
            row[CITE_PAGE] = chunk.page
        if chunk.section:
            row[CITE_SECTION] = chunk.section[:1000]
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
        page=entity.get(CITE_PAGE),
        section=entity.get(CITE_SECTION),
    )
