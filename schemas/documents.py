"""Contract of the documents topic: one event per change of a document, keyed by doc_id."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator, model_validator

from schemas.bounds import Line, Metadata, Text, Version, version_clock_now, version_problem
from schemas.fields import DocId, Tenant, utc_now


class DocumentOp(StrEnum):
    """What happened to the document."""

    UPSERT = "upsert"
    DELETE = "delete"


SHA256_HEX = r"^[0-9a-f]{64}$"


def _from_base64(value: object) -> object:
    """JSON carries the bytes as standard base64; Python callers pass the bytes themselves."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("not standard base64") from None
    return value


InlineBytes = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda data: base64.b64encode(data).decode(), return_type=str, when_used="json"),
]


class OriginalRef(BaseModel):
    """The original bytes of a document: a content-addressed object in object storage, or (small originals,
    schema_version 3) the bytes themselves in `data`, so the extractor reads no object for them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(description="Object key in RAGBUS_OBJECTS_BUCKET.", examples=["originals/9f86d0…"])
    sha256: str = Field(pattern=SHA256_HEX, description="sha256 of the bytes (hex): the key is derived from it.")
    size: int = Field(ge=0, description="Size of the original in bytes.")
    data: InlineBytes | None = Field(
        None,
        description="The bytes themselves (base64 in JSON) when at most RAGBUS_OBJECTS_INLINE_MAX_BYTES: then "
        "nothing is stored under `key` (schema_version 3).",
    )

    @model_validator(mode="after")
    def _data_matches(self) -> OriginalRef:
        if self.data is not None and (
            len(self.data) != self.size or hashlib.sha256(self.data).hexdigest() != self.sha256
        ):
            raise ValueError("the inline bytes do not match the original's size and sha256")
        return self


def original_ref(data: bytes, *, inline: bool = False) -> OriginalRef:
    """The reference of `data`: key `originals/<sha256>` (the same bytes always get the same key); `inline`: the
    bytes travel in the event itself."""
    sha = hashlib.sha256(data).hexdigest()
    return OriginalRef(key=f"originals/{sha}", sha256=sha, size=len(data), data=data if inline else None)


class DocumentEvent(BaseModel):
    """A document was created or replaced (upsert) or removed (delete).

    Version 2 adds `media_type` and `original`: an upsert may carry a reference to its original bytes in object
    storage instead of inline text (the extractor turns it into text). Version 3 lets the original carry its bytes
    (`original.data`, small originals). Version 1 events stay valid as they were; an event with an original is
    version 2, and version 3 when its bytes are inline, so an older consumer refuses it rather than misread it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1, 2, 3] = Field(
        1, description="Contract version of this message (2 when it has an original, 3 when its bytes are inline)."
    )
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
    media_type: str = Field(
        "text/plain",
        description="Media type of the text or the original (v2; v1 events are text/plain).",
        examples=["application/pdf", "text/markdown"],
    )
    original: OriginalRef | None = Field(
        None, description="The original bytes, in object storage (v2) or inline (v3); then no text."
    )

    @model_validator(mode="before")
    @classmethod
    def _original_means_v2(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("original") is not None and "schema_version" not in data:
            original = data["original"]
            inline = (
                original.get("data") if isinstance(original, dict) else getattr(original, "data", None)
            ) is not None
            return {**data, "schema_version": 3 if inline else 2}
        return data

    @field_validator("version")
    @classmethod
    def _not_far_ahead(cls, version: int) -> int:
        if problem := version_problem(version):
            raise ValueError(problem)
        return version

    @model_validator(mode="after")
    def _upsert_has_text(self) -> DocumentEvent:
        if self.original is not None and self.schema_version < 2:
            raise ValueError("an event with an original is schema_version 2")
        if self.original is not None and self.original.data is not None and self.schema_version < 3:
            raise ValueError("an event with inline original bytes is schema_version 3")
        if self.original is not None and self.text:
            raise ValueError("an event carries either text or an original, not both")
        if self.op is DocumentOp.UPSERT and self.original is None and not self.text.strip():
            raise ValueError("an upsert needs non-empty text or an original")
        if self.op is DocumentOp.DELETE and (self.text or self.original is not None):
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
