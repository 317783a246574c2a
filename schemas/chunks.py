"""Contract of the chunks topic: the chunks of one document version, in one record or in consecutive parts."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

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


C = TypeVar("C", bound=Chunk)


class ChunkedVersion(DocumentHeader, Generic[C]):
    """The chunks of one document version: all of them, or one part of a version too large for one Kafka record.

    A part holds consecutive chunks and says how many the version has in all (`chunk_total`); the parts of a version
    share its key, so they travel in order on one partition; the version is whole once all its chunks are indexed.
    """

    chunks: list[C] = Field(default_factory=list)
    chunk_total: int | None = Field(
        None,
        ge=1,
        description="Chunks of the version in all when this record holds only consecutive ones of them (the version "
        "did not fit one record, RAGBUS_KAFKA_MAX_MESSAGE_BYTES); null: the record holds every chunk.",
    )

    @model_serializer(mode="wrap")
    def _whole_without_chunk_total(self, serialize: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A whole version is written as before parts existed, so a consumer of the earlier contract still reads it.
        data: dict[str, Any] = serialize(self)
        if self.chunk_total is None:
            data.pop("chunk_total", None)
        return data

    @model_validator(mode="after")
    def _chunks_in_order(self) -> ChunkedVersion[C]:
        indexes = [chunk.index for chunk in self.chunks]
        if self.chunk_total is None:
            if indexes != list(range(len(indexes))):
                raise ValueError("the chunks of a whole version are numbered 0, 1, 2, ... in order")
            return self
        if self.op is DocumentOp.DELETE or not indexes:
            raise ValueError("only an upsert with chunks comes in parts (chunk_total set)")
        if indexes != list(range(indexes[0], indexes[0] + len(indexes))) or indexes[-1] >= self.chunk_total:
            raise ValueError(f"a part holds consecutive chunks below chunk_total={self.chunk_total}, not {indexes}")
        return self

    @property
    def total_chunks(self) -> int:
        """Chunks of the version in all."""
        return len(self.chunks) if self.chunk_total is None else self.chunk_total

    @property
    def completes_version(self) -> bool:
        """Whether this record is the whole version or the part that holds its last chunk."""
        return self.chunk_total is None or self.chunks[-1].index == self.chunk_total - 1


class ChunkedDocument(ChunkedVersion[Chunk]):
    """A document version cut into chunks; a delete has no chunks."""

    schema_version: Literal[1] = 1
    embed_prefix: str = Field("", description="Title prefix put before each chunk's text for embedding.")
    tokenizer: str | None = Field(
        None,
        description="The embedding model (RAGBUS_EMBED_MODEL) whose tokenizer counted every token_count; an embedder "
        "of another model, or of none named, counts again.",
    )

    def embedding_input(self, chunk: Chunk) -> str:
        """The exact text the embedder encodes for `chunk`: title prefix, section, passage."""
        return embedding_input(self.embed_prefix, chunk.section, chunk.text)


def embedding_input(prefix: str, section: str | None, text: str) -> str:
    """Title prefix and section (each when present) before the passage, one per line."""
    return "\n".join(part for part in (prefix, section, text) if part)
