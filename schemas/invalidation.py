"""Contract of the cache-invalidation topic: a document's indexed state changed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.documents import DocumentOp
from schemas.fields import DocId, Tenant, utc_now


class CacheInvalidation(BaseModel):
    """Answers citing (or that could now cite) this document are stale."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    event_id: str = Field(description="event_id of the document event that caused the change.")
    op: DocumentOp
    doc_id: DocId
    tenant: Tenant = "default"
    version: int = Field(ge=0)
    collection: str = Field(description="Physical collection that changed.")
    generation: int = Field(ge=0, description="Index generation after the change.")
    produced_at: datetime = Field(description="When the document event was produced.")
    indexed_at: datetime = Field(default_factory=utc_now, description="When the change became searchable.")
