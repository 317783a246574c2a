"""Contract of the chunks topic: every chunk of one document version, in one message."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.bounds import Metadata, Version
from schemas.documents import DocumentOp
from schemas.fields import DocId, Tenant


def chunk_id_for(tenant: str, doc_id: str, version: int, index: int) -> str:
    """Deterministic chunk id: the same document version always yields the same ids (idempotent upserts).

    The indexer relies on it too: it removes an earlier version's chunks by these ids (primary keys).
    """
    digest = hashlib.sha256(f"{tenant}\x00{doc_id}".encode()).hexdigest()[:24]
    return f"{digest}-v{version}-{index}"


class Chunk(BaseModel):
    """A passage of a document, measured in the embedding model's tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chunk_id: str = Field(description="Deterministic id from (doc_id, version, index).", examples=["9c1e…-v17-0"])
    index: int = Field(ge=0, description="Position of the chunk in the document.")
    text: str = Field(description="The passage, an exact slice of the document text.")
    start: int = Field(ge=0, description="Character offset of the passage in the document text.")
    end: int = Field(ge=0, description="Character offset just past the passage.")
    token_count: int = Field(ge=1, description="Tokens of the embedding input, special tokens included.")
    section: str | None = Field(
        None,
        description="Headings the passage sits under, outermost first, joined by ' > '.",
        examples=["Setup > Kafka"],
    )
    page: int | None = Field(None, ge=1, description="1-based page of a PDF where the passage starts.")


class DocumentHeader(BaseModel):
    """Fields every downstream message repeats from the document event that caused it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(description="event_id of the document event.")
    op: DocumentOp
    doc_id: DocId
    version: Version
    tenant: Tenant = "default"
    title: str = ""
    metadata: Metadata = Field(default_factory=dict)
    source: str | None = None
    produced_at: datetime = Field(description="When the document event was produced (for freshness).")


class ChunkedDocument(DocumentHeader):
    """A document version cut into chunks; a delete has no chunks."""

    schema_version: Literal[1] = 1
    embed_prefix: str = Field("", description="Title prefix put before each chunk's text for embedding.")
    tokenizer: str | None = Field(
        None,
        description="The embedding model (RAGBUS_EMBED_MODEL) whose tokenizer counted every token_count; an embedder "
        "of another model, or of none named, counts again.",
    )
    chunks: list[Chunk] = Field(default_factory=list)

    def embedding_input(self, chunk: Chunk) -> str:
        """The exact text the embedder encodes for `chunk`: title prefix, section, passage."""
        return embedding_input(self.embed_prefix, chunk.section, chunk.text)


def embedding_input(prefix: str, section: str | None, text: str) -> str:
    """Title prefix and section (each when present) before the passage, one per line."""
    return "\n".join(part for part in (prefix, section, text) if part)
