"""Request and response bodies of the query API."""

from __future__ import annotations

import unicodedata

from pydantic import BaseModel, Field, field_validator


class QueryRequest(BaseModel):
    """A question."""

    query: str = Field(min_length=1, max_length=2000, description="The question.", examples=["How do I run tests?"])
    top_k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default from settings).")

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
