"""Metadata filters of a search: strictly validated here, then rendered by the store for the searched collection
(ragbus.milvus.filters: every key checked and every value escaped), always ANDed after the caller's tenant clause."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from query_api.validation import line_problem
from ragbus.milvus.filters import FILTER_KEY, MetadataWhere, Scalar, milvus_str
from schemas.bounds import LINE_PATTERN

MAX_KEYS = 8
MAX_VALUES = 20
_SAFE_INT = 2**53  # JSON numbers beyond this lose precision in Milvus


def _checked_scalar(value: Scalar) -> Scalar:
    if isinstance(value, str):
        if len(value) > 200:
            raise ValueError("filter strings are at most 200 characters")
        if problem := line_problem(value):
            raise ValueError(f"filter string {problem}")
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if abs(value) >= _SAFE_INT:
            raise ValueError("filter integers must be below 2**53 in magnitude")
    elif not math.isfinite(value):
        raise ValueError("filter numbers must be finite")
    return value


def _checked(filters: dict[str, Scalar | list[Scalar]]) -> dict[str, Scalar | list[Scalar]]:
    for key, value in filters.items():
        if not FILTER_KEY.fullmatch(key):
            raise ValueError(f"filter key {key[:70]!r} must match {FILTER_KEY.pattern}")
        values = value if isinstance(value, list) else [value]
        if not 1 <= len(values) <= MAX_VALUES:
            raise ValueError(f"filter {key}: between 1 and {MAX_VALUES} values")
        for item in values:
            _checked_scalar(item)
    return filters


# Strict: `true` is a boolean and `1` an integer, never one for the other (and "5" is a string).
def _not_an_int(value: object) -> object:
    # A strict float still takes an integer: one past the integer bound must be refused, not become a float.
    if isinstance(value, int):
        raise ValueError("filter integers must be below 2**53 in magnitude")
    return value


# The bounds _checked enforces are stated in the schema too (the OpenAPI document says what a filter may hold).
_StrictScalar = (
    Annotated[StrictStr, Field(max_length=200, json_schema_extra={"pattern": LINE_PATTERN})]
    | StrictBool
    | Annotated[StrictInt, Field(gt=-_SAFE_INT, lt=_SAFE_INT)]
    | Annotated[StrictFloat, BeforeValidator(_not_an_int)]
)
MetadataFilters = Annotated[
    dict[str, _StrictScalar | Annotated[list[_StrictScalar], Field(min_length=1, max_length=MAX_VALUES)]],
    Field(
        max_length=MAX_KEYS,
        description="Equality (or any-of, with a list) on document metadata fields, all ANDed.",
        examples=[{"lang": "en", "team": ["search", "infra"]}],
        json_schema_extra={"propertyNames": {"pattern": f"^{FILTER_KEY.pattern}$"}},
    ),
    AfterValidator(_checked),
]


def metadata_filter(filters: dict[str, Scalar | list[Scalar]]) -> MetadataWhere | None:
    """Validated filters as a MetadataWhere (rendered per collection by the store); None when there are none."""
    return MetadataWhere.of(_checked(filters))


def tenant_expression(
    tenant: str, filters: dict[str, Scalar | list[Scalar]] | None = None, *, dynamic: bool = False
) -> str:
    """The whole search filter: the caller's tenant first, ANDed with the metadata clauses (`dynamic`: on md_<key>)."""
    own = f"tenant == {milvus_str(tenant)}"
    where = metadata_filter(filters or {})
    return f"{own} and {where.expression(dynamic)}" if where else own
