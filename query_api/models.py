"""Request and response bodies of the query API."""

from __future__ import annotations

import unicodedata

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from query_api.metadata_filter import MetadataFilters
from ragbus.milvus.rows import ChunkHit
from schemas.bounds import MEANINGFUL_TEXT_PATTERN
from schemas.fields import DocId


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

    min_versions: dict[DocId, int] | None = Field(
        None,
        max_length=100,
        description="Read-your-writes: answer only once the index holds at least these versions of the caller's "
        "documents (doc_id -> version, as publishing returned it; a later delete also counts). Never from the cache.",
        examples=[{"docs/setup.md": 1733450000000000}],
    )
    min_versions_timeout_s: float | None = Field(
        None,
        gt=0,
        description="Longest wait for min_versions (default RAGBUS_API_MIN_VERSIONS_TIMEOUT_S, at most "
        "RAGBUS_API_MAX_MIN_VERSIONS_TIMEOUT_S); past it: 409 versions_pending.",
    )

    @field_validator("min_versions")
    @classmethod
    def _versions(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is not None and any(v < 0 for v in value.values()):
            raise ValueError("versions are non-negative integers")
        return value

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
    """A retrieved passage the answer relies on; citations are listed in ranked order, [n] of an answer is the n-th."""

    doc_id: str
    chunk_id: str
    title: str
    text: str
    rank: int = Field(description="Place in the retrieval's order, from 1 (the answer's [n] cites rank n).")
    score: float = Field(
        description="The figure the passages were ranked by, so it never grows down the list: the cosine similarity "
        "to the question for dense retrieval, the reciprocal-rank-fusion score for hybrid retrieval."
    )
    similarity: float = Field(description="Cosine similarity to the question (with hybrid, not the ranking figure).")
    page: int | None = Field(None, description="1-based page of a PDF where the passage starts.", examples=[7])
    section: str | None = Field(None, description="Headings the passage sits under.", examples=["Setup > Kafka"])

    @classmethod
    def ranked(cls, hits: list[ChunkHit]) -> list[Citation]:
        """Citations of search hits, in the order the search ranked them."""
        return [
            cls(
                doc_id=h.doc_id,
                chunk_id=h.chunk_id,
                title=h.title,
                text=h.text,
                rank=rank,
                score=h.ranking_score,
                similarity=h.score,
                page=h.page,
                section=h.section,
            )
            for rank, h in enumerate(hits, 1)
        ]


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
    pending: dict[str, dict[str, int | None]] | None = Field(
        None, description="versions_pending only: per document, the version wanted and the one indexed (null: none)."
    )


class ErrorResponse(BaseModel):
    """Envelope of an error."""

    error: ErrorBody
