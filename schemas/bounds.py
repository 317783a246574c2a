"""The bounds every boundary enforces on a document's fields: REST, `ragbus publish`, sources and raw events alike.

One definition, used by the contracts (schemas.documents) and by the API's request models, so a value the API
refuses is refused everywhere else too (docs/api.md, "Bounds of every field"):

- integers (versions, metadata values) are signed 64-bit; versions are at least 0 and at most
  VERSION_MAX_AHEAD past now on ragbus's version clock (microseconds since the epoch, what ragbus assigns);
- types are strict: `true` or `"5"` are never read as numbers, `1` never as a boolean;
- text allows tab, line feed and carriage return and no other C0 control character (NUL included), no DEL and no
  lone surrogate; one-line fields (titles, sources, metadata strings) allow no C0 control, no DEL and no NEL at all.
  The C1 controls (U+0080-U+009F) pass: real corpora carry them (SciFact's abstracts hold U+0096, a Windows-1252
  dash read as Latin-1), and no store or protocol ragbus uses treats them specially;
- metadata: at most METADATA_MAX_KEYS keys matching METADATA_KEY, values scalars or lists of strings.
"""

from __future__ import annotations

import math
import re
import time
import unicodedata
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictFloat, StrictInt, StrictStr

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Versions are compared per document and the newest wins: one absurdly far ahead would win over every later
# change. A day covers any producer's clock skew on the microsecond clock.
VERSION_MAX_AHEAD = timedelta(days=1)
METADATA_MAX_KEYS = 32
METADATA_STRING_MAX = 1000
METADATA_LIST_MAX = 100
METADATA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # fullmatch
_ALLOWED_CONTROLS = frozenset("\t\n\r")
_LINE_BREAKS = frozenset("\t\n\r\x85")  # what a one-line field refuses besides the other C0 controls and DEL
# The same rules as JSON Schema patterns, so the OpenAPI document states what the validators refuse (lone
# surrogates cannot be written in JSON text, so the patterns need not name them).
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# Text with at least one character that is not whitespace.
MEANINGFUL_TEXT_PATTERN = (
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*[^\s\x00-\x1f\x7f\x85][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
)
LINE_PATTERN = r"^[^\x00-\x1f\x7f\x85]*$"


def version_clock_now() -> int:
    """Now on ragbus's version clock: microseconds since the epoch (the default version of an event)."""
    return time.time_ns() // 1000


def version_problem(version: int, now: int | None = None) -> str | None:
    """Why `version` is out of bounds (negative, over int64, too far ahead of `now`), or None."""
    if not 0 <= version <= INT64_MAX:
        return f"version must be between 0 and {INT64_MAX} (a signed 64-bit integer)"
    horizon = (now if now is not None else version_clock_now()) + VERSION_MAX_AHEAD // timedelta(microseconds=1)
    if version > horizon:
        return (
            f"version {version} is more than {VERSION_MAX_AHEAD.days} day ahead of now in microseconds since the "
            "epoch: it would win over every later change of the document"
        )
    return None


def text_problem(value: str) -> str | None:
    """Why `value` is not acceptable text (C0 control characters such as NUL, DEL, lone surrogates), or None."""
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc" and ch <= "\x7f" and ch not in _ALLOWED_CONTROLS:
            return "contains control characters"
        if category == "Cs":
            return "contains invalid unicode (lone surrogates)"
    return None


def line_problem(value: str) -> str | None:
    """Like text_problem, but a one-line field allows no tab or line break (NEL included) either."""
    if any(ch in _LINE_BREAKS for ch in value):
        return "contains control characters"
    return text_problem(value)


def _text(value: str) -> str:
    if problem := text_problem(value):
        raise ValueError(problem)
    return value


def _line(value: str) -> str:
    if problem := line_problem(value):
        raise ValueError(problem)
    return value


def _not_an_int(value: object) -> object:
    # A strict float still takes an integer; an integer past int64 must be refused, not become a float.
    if isinstance(value, int):
        raise ValueError(f"integers must be between {INT64_MIN} and {INT64_MAX} (signed 64 bits)")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("numbers must be finite")
    return value


def _metadata(value: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
    for key in value:
        if not METADATA_KEY.fullmatch(key):
            raise ValueError(f"metadata key {key[:70]!r} must match {METADATA_KEY.pattern}")
    return value


Int64 = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]
Version = Annotated[StrictInt, Field(ge=0, le=INT64_MAX)]
Text = Annotated[StrictStr, AfterValidator(_text), Field(json_schema_extra={"pattern": TEXT_PATTERN})]
Line = Annotated[StrictStr, AfterValidator(_line), Field(json_schema_extra={"pattern": LINE_PATTERN})]
MetadataString = Annotated[Line, Field(max_length=METADATA_STRING_MAX)]
MetadataValue = (
    MetadataString
    | StrictBool
    | Int64
    | Annotated[StrictFloat, BeforeValidator(_not_an_int), AfterValidator(_finite)]
    | None
    | Annotated[list[MetadataString], Field(max_length=METADATA_LIST_MAX)]
)
Metadata = Annotated[
    dict[str, MetadataValue],
    Field(
        max_length=METADATA_MAX_KEYS,
        description="Filterable fields: scalars or lists of strings.",
        json_schema_extra={"propertyNames": {"pattern": f"^{METADATA_KEY.pattern}$"}},
    ),
    AfterValidator(_metadata),
]
