"""Request and response bodies of the query API."""

from __future__ import annotations

import unicodedata

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from query_api.metadata_filter import MetadataFilters
from schemas.bounds import MEANINGFUL_TEXT_PATTERN


class QueryRequest(BaseModel):
    """A question."""

    # No tenant or other unknown field: the tenant comes from the credential only.
    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        max_length=2000,
        description="The question (not only whitespace, no control characters but tab and line breaks).",
        examples=["How do I run tests?"],
        json_schema_extra={"pattern": MEANINGFUL_TEXT_PATTERN},
    )
    # The bound is a sanity cap; the route clamps to RAGBUS_API_MAX_TOP_K (benchmarks raise it for recall@100).
    top_k: StrictInt | None = Field(
        None, ge=1, le=1000, description="Passages to retrieve (default from settings, at most RAGBUS_API_MAX_TOP_K)."
    )
    filters: MetadataFilters = Field(default_factory=dict)
    stream: StrictBool = Field(
        False, description="Answer as Server-Sent Events: citations, then answer deltas in order, then done."
    )
    retrieve_only: StrictBool = Field(
        False,
        description="Retrieval only: the ranked passages as citations and an empty answer (no LLM, no extractive "
        "answer). Cached and tenant-scoped like answers.",
    )

    @field_validator("query")
    @classmethod
    def _meaningful(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is empty or whitespace only")
        if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in value):
            raise ValueError("query contains control characters")
        if any(unicodedata.category(ch) == "Cs" for ch in value):
            raise ValueError("query contains invalid unicode (lone surrogates)")
        return value

    @model_validator(mode="after")
    def _answer_to_stream(self) -> QueryRequest:
        if self.stream and self.retrieve_only:
            raise ValueError("stream and retrieve_only exclude each other: only an answer is streamed")
        return self


class Citation(BaseModel):
    """A retrieved passage the answer relies on."""

    doc_id: str
    chunk_id: str
    title: str
    text: str
    score: float = Field(description="Cosine similarity to the query.")


class QueryResponse(BaseModel):
    """A grounded answer."""

    answer: str
    citations: list[Citation]
    cached: bool = Field(description="Served from the query cache.")
    degraded: bool = Field(description="The LLM failed and the answer is extractive instead.")
    took_ms: float = Field(0.0, description="Server-side time.")


class ErrorBody(BaseModel):
    """Every error the API returns."""

    code: str
    message: str


class ErrorResponse(BaseModel):
    """Envelope of an error."""

    error: ErrorBody
