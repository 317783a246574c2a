"""Bodies of POST /v1/documents: a document event minus its tenant, which comes from the credential."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from query_api.validation import line_problem, text_problem
from schemas.fields import DocId, MetadataValue

MAX_BATCH = 100
_METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class DocumentIn(BaseModel):
    """A document to create or replace."""

    model_config = ConfigDict(extra="forbid")

    doc_id: DocId
    title: str = Field("", max_length=1000, description="Human-readable title, shown in citations.")
    text: str = Field(min_length=1, description="Full text (at most RAGBUS_CHUNK_MAX_DOCUMENT_CHARS characters).")
    metadata: dict[str, MetadataValue] = Field(default_factory=dict, max_length=32, description="Filterable fields.")
    source: str | None = Field(None, max_length=2000, description="Where the document came from.")
    version: int | None = Field(None, ge=0, description="Monotonic per document; default: now in microseconds.")

    @model_validator(mode="before")
    @classmethod
    def _no_tenant(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tenant" in data:
            raise ValueError("tenant is not accepted in the body: it comes from the credential")
        return data

    @field_validator("doc_id", "title", "source")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value and (problem := line_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("text")
    @classmethod
    def _meaningful(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty or whitespace only")
        if problem := text_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("metadata")
    @classmethod
    def _plain_metadata(cls, value: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
        for key, item in value.items():
            if not _METADATA_KEY.match(key):
                raise ValueError(f"metadata key {key[:70]!r} must match {_METADATA_KEY.pattern}")
            for text in item if isinstance(item, list) else [item]:
                if isinstance(text, str) and (len(text) > 1000 or line_problem(text)):
                    raise ValueError(f"metadata {key}: strings are single lines of at most 1000 characters")
        return value


class DocumentsAccepted(BaseModel):
    """Events the broker acknowledged; the workers make them searchable shortly after."""

    event_ids: list[str] = Field(description="One per document, in request order.")
    doc_ids: list[str]
    versions: list[int] = Field(description="Version each event carries (newer versions win).")
