"""The indexer seals what it wrote once writes pause, so searches go through the index (not a scan of fresh rows)."""

from __future__ import annotations

import pytest

from ragbus.milvus.store import MilvusChunkStore
from schemas.documents import DocumentEvent
from tests.stack_fixtures import Pipeline, wait_for

pytestmark = [pytest.mark.integration]


def test_written_chunks_end_up_indexed_after_a_pause(pipeline: Pipeline, indexed_corpus: list[DocumentEvent]) -> None:
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        serving = store.alias_target()
        assert serving
        chunks = store.count_chunks()
        assert chunks >= len(indexed_corpus)

        def indexed() -> bool:
            info = store.client.describe_index(serving, "embedding")
            return int(info.get("indexed_rows", 0)) >= chunks and int(info.get("pending_index_rows", 0)) == 0

        wait_for(indexed, timeout_s=120, interval_s=1.0, message="the indexer's writes sealed and indexed")
    finally:
        store.close()
