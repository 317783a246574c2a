"""Contract of the documents topic: one event per change of a document, keyed by doc_id."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.bounds import Line, Metadata, Text, Version, version_clock_now, version_problem
from schemas.fields import DocId, Tenant, utc_now


class DocumentOp(StrEnum):
    """What happened to the document."""

    UPSERT = "upsert"
    DELETE = "delete"


class DocumentEvent(BaseModel):
    """A document was created or replaced (upsert) or removed (delete)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(1, description="Contract version of this message.")
    event_id: str = Field(
        default_factory=lambda: uuid.uuid4().hex, description="Unique id of this event.", examples=["3f2a..."]
    )
    op: DocumentOp = Field(DocumentOp.UPSERT, description="upsert replaces the whole document; delete removes it.")
    doc_id: DocId
    version: Version = Field(
        # Microseconds since the epoch: later publishes of the same document get larger versions.
        default_factory=version_clock_now,
        description="Monotonic per document; an event older than the indexed version is ignored. From 0 to at "
        "most one day ahead of now in microseconds since the epoch (schemas.bounds).",
    )
    tenant: Tenant = "default"
    title: Line = Field("", max_length=1000, description="Human-readable title, shown in citations.")
    text: Text = Field("", description="Full text of the document (empty for a delete).")
    metadata: Metadata = Field(default_factory=dict)
    source: Line | None = Field(None, max_length=2000, description="Where the document came from (path or URI).")
    produced_at: datetime = Field(default_factory=utc_now, description="When the producer created the event.")

    @field_validator("version")
    @classmethod
    def _not_far_ahead(cls, version: int) -> int:
        if problem := version_problem(version):
            raise ValueError(problem)
        return version

    @model_validator(mode="after")
    def _upsert_has_text(self) -> DocumentEvent:
        if self.op is DocumentOp.UPSERT and not self.text.strip():
            raise ValueError("an upsert needs non-empty text")
        if self.op is DocumentOp.DELETE and self.text:
            raise ValueError("a delete carries no text")
        return self


_KEY_SEPARATOR = "\x1f"  # a control character: DocId and Tenant can never contain it


def document_key(tenant: str, doc_id: str) -> bytes:
    """Kafka key of a document: every event of one document lands on one partition, in order."""
    return (doc_id if tenant == "default" else f"{tenant}{_KEY_SEPARATOR}{doc_id}").encode()


def key_problem(key: bytes | None, event: DocumentEvent) -> str | None:
    """Why a record's Kafka key does not belong to its event (the key orders a document's events), or None."""
    expected = document_key(event.tenant, event.doc_id)
    if key != expected:
        shown = key.decode(errors="replace")[:200] if key is not None else None
        return f"record key {shown!r} is not the document's key {expected.decode()!r} (doc_id, tenant)"
    return None


def parse_document_key(key: bytes) -> tuple[str, str]:
    """(tenant, doc_id) of a document key."""
    text = key.decode()
    tenant, sep, doc_id = text.partition(_KEY_SEPARATOR)
    return (tenant, doc_id) if sep else ("default", text)


def tombstone_event(key: bytes, timestamp_ms: int) -> DocumentEvent:
    """The delete a tombstone (null value) stands for.

    A tombstone carries no version, so it takes the record's timestamp in microseconds: the same clock as
    ragbus's default versions. Producers that set their own versions should publish deletes as events.
    """
    from datetime import UTC

    tenant, doc_id = parse_document_key(key)
    return DocumentEvent(
        op=DocumentOp.DELETE,
        doc_id=doc_id,
        tenant=tenant,
        version=timestamp_ms * 1000,
        produced_at=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
        event_id=f"tombstone-{uuid.uuid4().hex}",
    )
