"""Message contracts: round trips, versions, poison input, keys and tombstones."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from ragbus.errors import InvalidMessage, UnknownSchemaVersion
from schemas import ChunkedDocument, DocumentEvent, DocumentOp, EmbeddedDocument, decode, encode
from schemas.dead_letter import DeadLetterHeaders, original_event_id
from schemas.documents import document_key, original_ref, parse_document_key, tombstone_event
from schemas.embeddings import pack_vector, unpack_vector
from schemas.errors import ContractError, UnsupportedSchemaVersion
from schemas.quarantine import QuarantineRequest
from schemas.topics import STAGES, Topics


def test_document_event_round_trips_through_orjson() -> None:
    event = DocumentEvent(doc_id="docs/a.md", title="A", text="héllo", metadata={"lang": "en", "n": 3})
    again = decode(encode(event), DocumentEvent)
    assert again == event
    assert orjson.loads(encode(event))["schema_version"] == 1


def test_versions_default_to_increasing_numbers() -> None:
    first, second = DocumentEvent(doc_id="a", text="x"), DocumentEvent(doc_id="a", text="y")
    assert second.version >= first.version > 0
    assert first.event_id != second.event_id


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"{not json", ContractError),
        (b"[1, 2]", ContractError),
        (b'{"doc_id": "a"}', ContractError),
        (b'{"schema_version": 4, "doc_id": "a", "text": "x"}', UnsupportedSchemaVersion),
        (
            b'{"schema_version": 1, "doc_id": "a", "original": {"key": "k", "sha256": "%s", "size": 1}}' % (b"a" * 64),
            ContractError,
        ),
        (b'{"doc_id": "a", "text": "   "}', ContractError),
        (b'{"doc_id": "a", "op": "delete", "text": "leftover"}', ContractError),
        (b'{"doc_id": "a\\u0000b", "text": "x"}', ContractError),
        (b'{"doc_id": "a", "text": "x", "surprise": 1}', ContractError),
        (None, ContractError),
    ],
)
def test_poison_payloads_break_the_contract(payload: bytes | None, error: type[Exception]) -> None:
    with pytest.raises(error) as err:
        decode(payload, DocumentEvent)
    assert str(err.value)


def test_invalid_message_names_the_field() -> None:
    with pytest.raises(ContractError, match="doc_id"):
        decode(b'{"text": "x"}', DocumentEvent)


def test_unknown_version_is_told_apart_from_malformed() -> None:
    with pytest.raises(UnsupportedSchemaVersion) as err:
        decode(b'{"schema_version": 9, "event_id": "e"}', ChunkedDocument)
    assert err.value.code == "unknown_schema_version"


def test_the_core_keeps_a_contract_errors_code_so_dead_letters_say_why() -> None:
    for payload, core_error, code in [
        (b"{not json", InvalidMessage, "invalid_message"),
        (b'{"schema_version": 4, "doc_id": "a", "text": "x"}', UnknownSchemaVersion, "unknown_schema_version"),
    ]:
        with pytest.raises(ContractError) as err:
            decode(payload, DocumentEvent)
        mapped = InvalidMessage.from_contract(err.value)
        assert (type(mapped), mapped.code, str(mapped)) == (core_error, code, str(err.value))


def test_keys_keep_tenant_and_doc_id_apart() -> None:
    assert document_key("default", "a/b.md") == b"a/b.md"
    assert parse_document_key(document_key("default", "a/b.md")) == ("default", "a/b.md")
    assert parse_document_key(document_key("acme", "a/b.md")) == ("acme", "a/b.md")
    with pytest.raises(ValidationError):
        DocumentEvent(doc_id="a\x1fb", text="x")


def test_tombstone_is_a_delete_of_the_keyed_document() -> None:
    event = tombstone_event(document_key("acme", "doc-1"), timestamp_ms=1_700_000_000_000)
    assert (event.op, event.tenant, event.doc_id) == (DocumentOp.DELETE, "acme", "doc-1")
    assert event.version == 1_700_000_000_000_000


def test_vectors_pack_exactly() -> None:
    import numpy as np

    vector = np.random.default_rng(0).standard_normal(384).astype("float32")
    assert unpack_vector(pack_vector(vector)) == vector.tolist()


def test_embedded_document_contract_requires_model_and_dim() -> None:
    with pytest.raises(ContractError, match="model"):
        decode(
            orjson.dumps(
                {
                    "event_id": "e",
                    "op": "upsert",
                    "doc_id": "a",
                    "version": 1,
                    "produced_at": "2026-01-01T00:00:00Z",
                    "dim": 3,
                }
            ),
            EmbeddedDocument,
        )


def test_dead_letter_headers_round_trip() -> None:
    headers = DeadLetterHeaders(stage="chunker", error_code="x", error="bad", topic="t", partition=1, offset=9)
    assert DeadLetterHeaders.from_kafka([("other", b"1"), *headers.to_kafka()]) == headers


def test_topic_names_share_the_prefix() -> None:
    topics = Topics("acme")
    assert topics.documents == "acme.documents.v1"
    assert all(name.startswith("acme.") for name in topics.all())
    # with extracted, the extractor DLQ, quarantine and the bulk twins of documents, extracted, chunks, embedded
    assert len(set(topics.all())) == len(topics.all()) == 15


def test_a_dead_letter_is_told_by_its_original_event_id_field_not_by_bytes_in_the_payload() -> None:
    quoting = DocumentEvent(doc_id="a", event_id="mine", text='a text that quotes "event_id":"other"')
    assert original_event_id(encode(quoting)) == "mine"
    # A message rejected for its content still carries its event id.
    assert original_event_id(b'{"event_id": "e-1", "doc_id": "a", "text": ""}') == "e-1"
    for unreadable in (b"{this is not json", b"[1, 2]", b'{"event_id": 7}', None):
        assert original_event_id(unreadable) is None


def test_a_document_with_an_original_is_version_2_and_version_1_stays_valid() -> None:
    original = {"key": f"originals/{'a' * 64}", "sha256": "a" * 64, "size": 10}
    event = DocumentEvent(doc_id="r.pdf", media_type="application/pdf", original=original)
    again = decode(encode(event), DocumentEvent)
    assert again.schema_version == 2 and again.original is not None and again.text == ""
    old = decode(b'{"schema_version": 1, "doc_id": "a", "text": "x"}', DocumentEvent)
    assert old.media_type == "text/plain" and old.original is None


def test_every_stage_can_be_asked_to_quarantine_a_record_and_nothing_else() -> None:
    for stage in STAGES:  # the extractor reads the documents topic: its stuck records need quarantine too
        assert QuarantineRequest(stage=stage, topic="ragbus.documents.v1", partition=0, offset=3).stage == stage
    with pytest.raises(ValidationError):
        QuarantineRequest(stage="publisher", topic="ragbus.documents.v1", partition=0, offset=3)  # type: ignore[arg-type]


def test_an_original_with_its_bytes_inline_is_version_3_and_must_match_its_hash() -> None:
    event = DocumentEvent(doc_id="r.pdf", media_type="application/pdf", original=original_ref(b"%PDF-1.7", inline=True))
    raw = orjson.loads(encode(event))
    assert raw["schema_version"] == 3 and raw["original"]["data"] == "JVBERi0xLjc="  # standard base64 in JSON
    again = decode(encode(event), DocumentEvent)
    assert again == event and again.original is not None and again.original.data == b"%PDF-1.7"
    for change, problem in [
        ({"data": "JVBERi0xLjg="}, "do not match"),  # other bytes under the same sha256
        ({"data": "not base64!"}, "base64"),
    ]:
        with pytest.raises(ContractError, match=problem):
            decode(orjson.dumps({**raw, "original": {**raw["original"], **change}}), DocumentEvent)
    with pytest.raises(ContractError, match="schema_version 3"):
        decode(orjson.dumps({**raw, "schema_version": 2}), DocumentEvent)
    # without the bytes the same original is a version-2 reference to object storage
    stored = DocumentEvent(doc_id="r.pdf", media_type="application/pdf", original=original_ref(b"%PDF-1.7"))
    assert stored.schema_version == 2
