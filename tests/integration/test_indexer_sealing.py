"""The indexer seals what it wrote once writes pause, so searches go through the index (not a scan of fresh rows);
never while one of its batches runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ragbus.milvus.store import MilvusChunkStore
from schemas.documents import DocumentEvent
from tests.stack_fixtures import Pipeline, wait_for
from workers.indexer.handlers import IndexerHandler
from workers.indexer.sealer import CollectionSealer

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


def test_a_flush_and_an_indexer_batch_never_overlap(pipeline: Pipeline, indexed_corpus: list[DocumentEvent]) -> None:
    """While milvus-lite flushes, a read can return a document state's previous value (bench/milvus_flush_reads.py),
    which the indexer's version check must never act on: the sealer's flush waits for the batch, and the batch for
    the flush."""
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    unused: Any = None  # an empty batch reads the states and stops there: no write, no generation, no announcement

    async def scenario() -> None:
        collection = store.alias_target()
        assert collection
        sealer = CollectionSealer(store, collection, interval_s=10.0)
        handler = IndexerHandler(store, unused, unused, unused, unused, dim=384, collection=collection, sealer=sealer)
        # A flush waits for the batch in progress.
        async with sealer.between_flushes():  # as a batch in progress
            sealer.wrote()
            flush = asyncio.create_task(sealer.seal())
            batch = asyncio.create_task(handler.process([]))
            await asyncio.sleep(0.5)
            assert not flush.done() and not batch.done() and sealer.flushes == 0
        await asyncio.wait_for(flush, timeout=60)
        assert sealer.flushes == 1  # the real flush ran once the batch was over
        assert await asyncio.wait_for(batch, timeout=60) == []

        # A batch waits for the flush in progress: it ends only after the flush (an empty batch alone takes
        # milliseconds, a flush of two collections far longer).
        sealer.wrote()
        flush = asyncio.create_task(sealer.seal())
        await asyncio.sleep(0)  # the flush takes the lock and is under way
        assert not flush.done()
        assert await asyncio.wait_for(handler.process([]), timeout=60) == []
        assert sealer.flushes == 2
        await flush

    try:
        asyncio.run(scenario())
    finally:
        store.close()
