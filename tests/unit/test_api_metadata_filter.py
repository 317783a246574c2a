"""Metadata filters: strict validation, and every key and value escaped in the Milvus expression."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from query_api.metadata_filter import MetadataFilters, metadata_filter, tenant_expression

FILTERS = TypeAdapter(MetadataFilters)


def test_filters_render_as_anded_equalities_after_the_tenant() -> None:
    filters = FILTERS.validate_python({"lang": "en", "year": 2024, "draft": False, "team": ["a", "b"], "w": 0.5})
    # A string also matches list metadata holding it (json_contains).
    assert tenant_expression("acme", filters) == (
        'tenant == "acme" and (metadata["draft"] == false and '
        '(metadata["lang"] == "en" or json_contains(metadata["lang"], "en")) and '
        '((metadata["team"] == "a" or json_contains(metadata["team"], "a")) or '
        '(metadata["team"] == "b" or json_contains(metadata["team"], "b"))) and metadata["w"] == 0.5 and '
        'metadata["year"] == 2024)'
    )
    assert tenant_expression("acme") == 'tenant == "acme"'
    assert metadata_filter({}) is None
    # Collections since 27 Nov 2026 hold each key in a dynamic field as well, and are filtered on those.
    assert tenant_expression("acme", filters, dynamic=True) == (
        'tenant == "acme" and (md_draft == false and (md_lang == "en" or json_contains(md_lang, "en")) and '
        '((md_team == "a" or json_contains(md_team, "a")) or (md_team == "b" or json_contains(md_team, "b"))) and '
        "md_w == 0.5 and md_year == 2024)"
    )


def test_quotes_and_backslashes_in_values_stay_inside_the_string_literal() -> None:
    filters = FILTERS.validate_python({"lang": 'en" or tenant != "', "x": ["\\", '\\" or 1 == 1 or "']})
    expression = tenant_expression("acme", filters)
    assert expression == (
        'tenant == "acme" and ((metadata["lang"] == "en\\" or tenant != \\"" or '
        'json_contains(metadata["lang"], "en\\" or tenant != \\"")) and ((metadata["x"] == "\\\\" or '
        'json_contains(metadata["x"], "\\\\")) or (metadata["x"] == "\\\\\\" or 1 == 1 or \\"" or '
        'json_contains(metadata["x"], "\\\\\\" or 1 == 1 or \\""))))'
    )
    assert tenant_expression("acme", filters, dynamic=True) == (
        'tenant == "acme" and ((md_lang == "en\\" or tenant != \\"" or json_contains(md_lang, "en\\" or '
        'tenant != \\"")) and ((md_x == "\\\\" or json_contains(md_x, "\\\\")) or (md_x == "\\\\\\" or '
        '1 == 1 or \\"" or json_contains(md_x, "\\\\\\" or 1 == 1 or \\""))))'
    )


@pytest.mark.parametrize(
    "filters",
    [
        {'lang"] == "" or tenant != "': "x"},  # injection through the key
        {"1starts_with_digit": "x"},
        {"team\n": "x"},  # `$` would let a trailing newline through
        {"k": "line\nbreak"},
        {"k": "nul\x00"},
        {"k": "x" * 201},
        {"k": []},
        {"k": list(range(21))},
        {"k": 2**60},
        {"k": float("nan")},
        {"k": {"nested": "object"}},
        {f"k{i}": 1 for i in range(9)},
    ],
)
def test_bad_filters_are_refused(filters: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FILTERS.validate_python(filters)


def test_hits_are_checked_again_with_strict_types_and_lists_hold_strings() -> None:
    where = metadata_filter(FILTERS.validate_python({"public": True}))
    assert where is not None and where.matches({"public": True}) and not where.matches({"public": 1})
    where = metadata_filter(FILTERS.validate_python({"level": 1}))
    assert where is not None and where.matches({"level": 1}) and not where.matches({"level": True})
    where = metadata_filter(FILTERS.validate_python({"tags": ["x", "b"], "lang": "en"}))
    assert where is not None and where.matches({"tags": ["a", "b"], "lang": "en"})
    assert not where.matches({"tags": ["a"], "lang": "en"}) and not where.matches({"tags": ["b"]})
