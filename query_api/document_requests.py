"""Bodies of POST /v1/documents: a document event minus its tenant, which comes from the credential."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.bounds import MEANINGFUL_TEXT_PATTERN, Line, Metadata, Text, Version, line_problem, version_problem
from schemas.fields import DocId

MAX_BATCH = 100


class DocumentIn(BaseModel):
    """A document to create or replace."""

    model_config = ConfigDict(extra="forbid")

    doc_id: DocId
    title: Line = Field("", max_length=1000, description="Human-readable title, shown in citations.")
    text: Text = Field(
        min_length=1,
        description="Full text (at most RAGBUS_CHUNK_MAX_DOCUMENT_CHARS characters), not only whitespace.",
        json_schema_extra={"pattern": MEANINGFUL_TEXT_PATTERN},
    )
    metadata: Metadata = Field(default_factory=dict)
    source: Line | None = Field(None, max_length=2000, description="Where the document came from.")
    version: Version | None = Field(
        None,
        description="Monotonic per document, 0 to one day ahead of now in microseconds since the epoch. Default: "
        "now, or the indexed version if that is ahead (a replace without a version always supersedes).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_tenant(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tenant" in data:
            raise ValueError("tenant is not accepted in the body: it comes from the credential")
        return data

    @field_validator("doc_id")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if problem := line_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("text")
    @classmethod
    def _meaningful(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty or whitespace only")
        return value

    @field_validator("version")
    @classmethod
    def _not_far_ahead(cls, value: int | None) -> int | None:
        if value is not None and (problem := version_problem(value)):
            raise ValueError(problem)
        return value


class DocumentsAccepted(BaseModel):
    """Events the broker acknowledged; the workers make them searchable shortly after."""

    event_ids: list[str] = Field(description="One per document, in request order.")
    doc_ids: list[str]
    versions: list[int] = Field(description="Version each event carries (newer versions win).")
