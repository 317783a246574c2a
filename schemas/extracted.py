"""Contract of the extracted topic: a document's text as structured blocks, made by the extractor stage."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.chunks import DocumentHeader
from schemas.documents import DocumentEvent, DocumentOp


class BlockKind(StrEnum):
    """What a block is: the chunker keeps tables and code whole and turns headings into section context."""

    HEADING = "heading"
    PARAGRAPH = "paragraph"
    TABLE = "table"
    CODE = "code"
    LIST = "list"


class Block(BaseModel):
    """One unit of a document's text, markup removed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: BlockKind = BlockKind.PARAGRAPH
    text: str = Field(description="Plain text; a table has one row per line, a list one item per line.")
    section: list[str] = Field(
        default_factory=list, description="Headings above the block, outermost first.", examples=[["Setup", "Kafka"]]
    )
    page: int | None = Field(None, ge=1, description="1-based page of a PDF (None for formats without pages).")


class ExtractedDocument(DocumentHeader):
    """A document version as structured text; a delete has no blocks."""

    schema_version: Literal[1] = 1
    media_type: str = Field("text/plain", description="Media type of what was extracted.", examples=["application/pdf"])
    content_sha256: str | None = Field(None, description="sha256 of the original bytes (None for inline text).")
    extractor: str = Field("", description="Extractor version that made the blocks (the cache key with the hash).")
    blocks: list[Block] = Field(default_factory=list)


def header_of(event: DocumentEvent) -> dict[str, object]:
    """The DocumentHeader fields an event hands down to every later message."""
    return {
        "event_id": event.event_id,
        "op": event.op,
        "doc_id": event.doc_id,
        "version": event.version,
        "tenant": event.tenant,
        "title": event.title,
        "metadata": event.metadata,
        "source": event.source,
        "produced_at": event.produced_at,
    }


def plain_text_document(event: DocumentEvent, extractor: str = "") -> ExtractedDocument:
    """A text/plain event as it is: one paragraph block holding the whole text (a delete has none)."""
    blocks = [Block(text=event.text)] if event.op is DocumentOp.UPSERT else []
    return ExtractedDocument(**header_of(event), media_type=event.media_type, extractor=extractor, blocks=blocks)
