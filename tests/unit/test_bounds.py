"""Every boundary enforces schemas.bounds: REST bodies, the query API, `ragbus publish` files and raw events."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from producers.sources.files import read_documents
from query_api.document_requests import DocumentIn
from query_api.models import QueryRequest
from ragbus.errors import InputError, InvalidMessage
from schemas.bounds import INT64_MAX, version_clock_now
from schemas.codec import decode
from schemas.documents import DocumentEvent, document_key
from schemas.errors import ContractError
from workers.extractor.handlers import decode_document_record

DAY_US = 86_400_000_000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", INT64_MAX + 1),
        ("version", -1),
        ("version", version_clock_now() + 2 * DAY_US),
        ("version", True),
        ("version", "5"),
        ("version", 5.0),
        ("metadata", {"n": 2**64}),
        ("metadata", {"n": INT64_MAX + 1}),
        ("metadata", {"s": "a\x00b"}),
        ("metadata", {"bad key": 1}),
        ("text", "nul \x00 inside"),
        ("title", "tab\tinside"),
        ("source", "a\x00b"),
    ],
)
def test_the_contract_and_the_rest_body_refuse_the_same_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        DocumentEvent.model_validate({"doc_id": "a", "text": "some text", field: value})
    with pytest.raises(ValidationError):
        DocumentIn.model_validate({"doc_id": "a", "text": "some text", field: value})


def test_values_at_the_bounds_are_accepted_everywhere() -> None:
    near_future = version_clock_now() + DAY_US // 2
    metadata = {"big": INT64_MAX, "small": -(2**63), "flag": True, "tags": ["x", "y"], "ratio": 0.5}
    body = {"doc_id": "a", "text": "tabs\tand\nlines", "version": near_future, "metadata": metadata}
    event = DocumentEvent.model_validate(body)
    assert event.version == near_future and event.metadata["big"] == INT64_MAX
    assert DocumentIn.model_validate(body).metadata == event.metadata
    assert event.metadata["flag"] is True, "a boolean stays a boolean, never 1"


@pytest.mark.parametrize("body", [{"top_k": True}, {"top_k": "5"}, {"top_k": 5.0}, {"stream": 1}, {"stream": "true"},
                                  {"retrieve_only": 0}, {"filters": {"lang": None}}])  # fmt: skip
def test_the_query_api_takes_no_coerced_types(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        QueryRequest.model_validate_json(__import__("json").dumps({"query": "hello", **body}))


def test_filters_keep_true_and_1_apart() -> None:
    parsed = QueryRequest.model_validate_json('{"query": "q", "filters": {"a": true, "b": 1, "c": [1, true]}}')
    assert parsed.filters["a"] is True and type(parsed.filters["b"]) is int
    assert [type(v) for v in parsed.filters["c"]] == [int, bool]  # type: ignore[union-attr]


def test_jsonl_with_nul_or_a_number_as_text_is_refused_with_its_line(tmp_path: Path) -> None:
    nul = tmp_path / "nul.jsonl"
    nul.write_text('{"_id": "a", "text": "fine"}\n{"_id": "b", "text": "bad \\u0000 here"}\n')
    with pytest.raises(InputError, match=r"nul.jsonl:2: text: .*control characters"):
        read_documents([nul])
    numeric = tmp_path / "numeric.jsonl"
    numeric.write_text('{"_id": "a", "text": 5}\n')
    with pytest.raises(InputError, match=r"numeric.jsonl:1: text"):
        read_documents([numeric])
    big = tmp_path / "big.jsonl"
    big.write_text('{"_id": "a", "text": "x", "metadata": {"n": 18446744073709551616}}\n')
    with pytest.raises(InputError, match=r"big.jsonl:1"):
        read_documents([big])


def _record(key: bytes | None, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", 0, 7, 0, 0, key, value, None, len(key or b""), len(value), ())


def test_text_with_c1_controls_as_real_corpora_carry_is_read_and_the_same_rules_hold_in_the_schema(
    tmp_path: Path,
) -> None:
    """SciFact's abstracts hold U+0096 (a Windows-1252 dash read as Latin-1): refusing it refused the whole corpus."""
    import re

    from schemas.bounds import LINE_PATTERN, TEXT_PATTERN

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "title": "T\\u0096 1", "text": "dose\\u0096response curve"}\n')
    (event,) = read_documents([corpus])
    assert event.text == "dose\x96response curve" and event.title == "T\x96 1"
    assert re.fullmatch(TEXT_PATTERN, "dose\x96response\n") and not re.fullmatch(TEXT_PATTERN, "a\x7fb")
    assert not re.fullmatch(LINE_PATTERN, "a\x85b") and not re.fullmatch(LINE_PATTERN, "a\x1bb")
    with pytest.raises(ValidationError, match="control characters"):
        DocumentIn.model_validate({"doc_id": "a", "text": "bell \x07 here"})
    with pytest.raises(ValidationError, match="control characters"):
        DocumentIn.model_validate({"doc_id": "a", "text": "fine", "title": "next\x85line"})


def test_a_raw_event_under_another_key_than_its_documents_is_refused() -> None:
    value = b'{"doc_id": "a.md", "tenant": "acme", "text": "hello"}'
    assert decode_document_record(_record(document_key("acme", "a.md"), value)).doc_id == "a.md"
    for key in (b"a.md", document_key("globex", "a.md"), None):
        with pytest.raises(InvalidMessage, match="is not the document's key") as caught:
            decode_document_record(_record(key, value))
        assert caught.value.code == "key_mismatch"


def test_raw_events_with_integers_past_64_bits_are_refused_not_read_as_floats() -> None:
    with pytest.raises(ContractError, match="version"):
        decode(b'{"doc_id": "a", "text": "x", "version": 9223372036854775808}', DocumentEvent)
    key = document_key("default", "a")
    with pytest.raises(ContractError, match="metadata"):
        decode_document_record(_record(key, b'{"doc_id": "a", "text": "x", "metadata": {"n": 18446744073709551616}}'))
    with pytest.raises(ContractError, match="not JSON"):
        decode_document_record(_record(key, b'{"doc_id": "a", "text": "x", "metadata": {"n": NaN}}'))
