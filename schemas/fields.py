"""Field types shared by several contracts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StrictStr

_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}
DOC_ID_MAX_BYTES = 1024


def _no_control_chars(value: str) -> str:
    if any(ch in _CONTROL for ch in value):
        raise ValueError("must not contain control characters")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    if len(value.encode("utf-8", "surrogatepass")) > DOC_ID_MAX_BYTES:
        raise ValueError(f"must be at most {DOC_ID_MAX_BYTES} bytes in UTF-8 (the chunk store's limit)")
    return value


DocId = Annotated[
    StrictStr,
    Field(min_length=1, max_length=512, description="Stable id of the document.", examples=["handbook/intro.md"]),
    AfterValidator(_no_control_chars),
]
Tenant = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Owner of the document."),
]


def utc_now() -> datetime:
    """Now, timezone-aware in UTC."""
    return datetime.now(UTC)
