"""Field types shared by several contracts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr

from schemas.bounds import line_problem

DOC_ID_MAX_BYTES = 1024
# What DocId accepts, as a pattern, so the OpenAPI document says which ids are valid: no control character (C0, DEL
# or C1), no leading or trailing whitespace.
DOC_ID_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"


def _no_control_chars(value: str) -> str:
    # One-line rules of schemas.bounds: no control character (C0, DEL or C1), no lone surrogate.
    if problem := line_problem(value):
        raise ValueError(problem)
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if len(value.encode("utf-8", "surrogatepass")) > DOC_ID_MAX_BYTES:
        raise ValueError(f"must be at most {DOC_ID_MAX_BYTES} bytes in UTF-8 (the chunk store's limit)")
    return value


DocId = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=512,
        description="Stable id of the document.",
        examples=["handbook/intro.md"],
        json_schema_extra={"pattern": DOC_ID_PATTERN},
    ),
    AfterValidator(_no_control_chars),
]
Tenant = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Owner of the document."),
]


def utc_now() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)
