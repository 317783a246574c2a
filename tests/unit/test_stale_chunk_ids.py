"""Which chunk ids the indexer removes: every recorded chunk set but the version being written."""

from __future__ import annotations

import pytest

from ragbus.errors import InvalidMessage
from schemas.chunks import chunk_id_for
from schemas.codec import decode, encode
from schemas.embeddings import EmbeddedDocument
from schemas.errors import ContractError
from tests.embedded_versions import version
from workers.indexer.applier import check_chunk_ids, stale_chunk_ids

DOC = ("default", "handbook/onboarding.md")


def test_stale_chunk_ids_keep_only_the_version_being_written() -> None:
    tenant, doc_id = DOC
    assert stale_chunk_ids(tenant, doc_id, {}, (1, 2)) == []
    assert stale_chunk_ids(tenant, doc_id, {1: 2}, (1, 2)) == []
    assert stale_chunk_ids(tenant, doc_id, {1: 3}, (1, 2)) == [chunk_id_for(tenant, doc_id, 1, 2)]
    assert stale_chunk_ids(tenant, doc_id, {1: 1, 2: 2}, None) == [
        chunk_id_for(tenant, doc_id, 1, 0),
        chunk_id_for(tenant, doc_id, 2, 0),
        chunk_id_for(tenant, doc_id, 2, 1),
    ]


def test_chunks_must_carry_the_ids_the_indexer_will_remove_them_by() -> None:
    good = version(3, 2, DOC)
    check_chunk_ids(good)
    renamed = good.model_copy(
        update={"chunks": [good.chunks[0].model_copy(update={"chunk_id": "mine-0"}), good.chunks[1]]}
    )
    with pytest.raises(InvalidMessage, match="chunk_id_for"):
        check_chunk_ids(renamed)
    with pytest.raises(ContractError, match="in order"):  # the contract itself refuses chunks out of order
        decode(encode(good.model_copy(update={"chunks": list(reversed(good.chunks))})), EmbeddedDocument)
    with pytest.raises(InvalidMessage):
        check_chunk_ids(good.model_copy(update={"version": 4}))  # ids of another version
