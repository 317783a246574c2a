"""A version too large for one Kafka record travels in parts, and the indexer joins the parts a batch holds."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from ragbus.record_parts import encode_in_parts
from schemas.codec import decode, encode
from schemas.embeddings import EmbeddedDocument
from schemas.errors import ContractError
from tests.embedded_versions import deletion, version
from workers.indexer.handlers import latest_per_document
from workers.runtime import Inbound

DOC = ("default", "handbook/long.md")


def parts_of(doc: EmbeddedDocument, max_bytes: int) -> list[EmbeddedDocument]:
    records = encode_in_parts(doc, max_bytes)
    assert all(len(record) <= max_bytes for record in records)
    return [decode(record, EmbeddedDocument) for record in records]


def test_a_version_that_fits_one_record_stays_whole_and_is_written_as_before_parts() -> None:
    doc = version(2, 3, DOC)
    assert encode_in_parts(doc, 1_000_000) == [encode(doc)]
    assert decode(encode(doc), EmbeddedDocument).completes_version
    # A consumer of the earlier contract (extra fields forbidden) still reads a whole version: no chunk_total key.
    assert b"chunk_total" not in encode(doc)
    assert b'"chunk_total":3' in encode(doc.model_copy(update={"chunk_total": 3}))


def test_a_large_version_goes_in_consecutive_parts_that_each_fit() -> None:
    doc = version(2, 40, DOC)  # about 2.2 KB a chunk with its vector: 88 KB
    assert len(encode(doc)) > 20_000
    parts = parts_of(doc, 20_000)
    assert len(parts) >= 5
    assert [c for p in parts for c in p.chunks] == doc.chunks  # every chunk once, in order
    assert {p.chunk_total for p in parts} == {40}
    assert [p.completes_version for p in parts] == [False] * (len(parts) - 1) + [True]
    header = {"chunks", "chunk_total"}
    assert all(p.model_dump(exclude=header) == doc.model_dump(exclude=header) for p in parts)
    assert parts[-1].total_chunks == 40


def test_a_part_cut_again_keeps_the_versions_chunk_total() -> None:
    first = parts_of(version(2, 40, DOC), 40_000)[0]
    again = parts_of(first, 10_000)
    assert len(again) > 1 and {p.chunk_total for p in again} == {40}
    assert [c.index for p in again for c in p.chunks] == [c.index for c in first.chunks]
    assert not any(p.completes_version for p in again)


def test_the_contract_refuses_parts_that_are_not_consecutive_or_past_the_total() -> None:
    doc = version(2, 6, DOC)
    gap = doc.model_copy(update={"chunks": [doc.chunks[1], doc.chunks[3]], "chunk_total": 6})
    past = doc.model_copy(update={"chunks": doc.chunks[4:], "chunk_total": 5})
    empty = doc.model_copy(update={"chunks": [], "chunk_total": 6})
    deleted = deletion(3, DOC).model_copy(update={"chunk_total": 2})
    for bad in (gap, past, empty, deleted):
        with pytest.raises(ContractError):
            decode(encode(bad), EmbeddedDocument)
    decode(encode(doc.model_copy(update={"chunks": doc.chunks[2:4], "chunk_total": 6})), EmbeddedDocument)


def inbound(doc: EmbeddedDocument, offset: int) -> Inbound[EmbeddedDocument]:
    record = ConsumerRecord("embedded", 0, offset, 0, 0, None, b"", 0, 0, 0, [])
    return Inbound(record, doc)


def test_the_indexer_joins_the_parts_of_the_newest_version_in_a_batch() -> None:
    old = parts_of(version(1, 30, DOC), 20_000)
    new = parts_of(version(2, 30, DOC), 20_000)
    other = version(1, 2, ("default", "other.md"))
    batch = [inbound(d, i) for i, d in enumerate([*old, other, *new[:2], new[0]])]  # new[0] delivered twice
    joined = {item.value.doc_id: item.value for item in latest_per_document(batch)}
    assert joined["other.md"] == other
    doc = joined[DOC[1]]
    assert doc.version == 2 and doc.chunk_total == 30
    assert doc.chunks == new[0].chunks + new[1].chunks
    assert not doc.completes_version

    # Parts with a gap between them (the one between was refused) are joined all the same: each chunk is written.
    (gapped,) = latest_per_document([inbound(new[0], 20), inbound(new[2], 21)])
    assert gapped.value.chunks == new[0].chunks + new[2].chunks

    rest = [inbound(d, 10 + i) for i, d in enumerate(new[2:])]
    (last,) = latest_per_document(rest)
    assert last.value.chunks == [c for p in new[2:] for c in p.chunks] and last.value.completes_version

    # A delete after the parts wins alone; parts of an older version never join a newer one.
    after = {item.value.doc_id: item.value for item in latest_per_document([*batch, inbound(deletion(3, DOC), 99)])}
    gone = after[DOC[1]]
    assert (gone.op.value, gone.version, gone.chunks, gone.chunk_total) == ("delete", 3, [], None)
