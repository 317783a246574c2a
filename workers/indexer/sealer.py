"""Seal what the indexer wrote (a Milvus flush) so searches use the index instead of scanning fresh rows.

Rows are searchable as soon as they are written, but until their segment is sealed a server searches them by brute
force: on milvus-lite, 10,000 unsealed chunks made a top-5 dense search take 260 ms and a BM25 search 1.4 s;
sealed, 4.6 ms and 47 ms (bench/README.md). The sealer flushes the pipeline's chunk and document-state collections
once writes pause for IDLE_S, and at least every RAGBUS_MILVUS_FLUSH_INTERVAL_S during a long ingest. It is best
effort: a refused flush (a server's flush rate limit, a restart) is retried at the next pause, never an error.

A flush request never overlaps a batch of this indexer process (`between_flushes`): while milvus-lite flushes a
collection,
a Strong query of it can return an earlier value of a row. Reading back just-written document states while another
client flushed and read, 23 of 127,378 reads in two runs returned an older version than the last written (in bursts,
in 4 of 8 overlapping 40 s periods; values up to dozens of writes old); with the flush kept out of the read-and-write
rounds, 0 of 124,309 (bench/results/milvus-flush-reads*.json; milvus-lite only). A stale state would
let an older event pass the indexer's version check, or leave a replaced version's chunks behind. Replicas of the
indexer on one collection each flush on their own.

Only the flush request (the seal) is kept apart from batches; waiting until the server has persisted the sealed
segments runs beside them. That wait is where a flush spends its time on the Milvus engine: 2.5 s per collection
on Milvus 2.3 here, against 0.05 s for a whole flush on milvus-lite, whose flush request does all the work. Held
under the lock, it kept every live batch waiting up to about 5 s behind each flush of the two collections. A
request waits at most RAGBUS_MILVUS_TIMEOUT_S (then the flush counts as deferred).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from ragbus.background import stop_task
from ragbus.errors import RagbusError
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore

log = logging.getLogger(__name__)
IDLE_S = 1.0
TICK_S = 0.25


class CollectionSealer:
    """Flushes a chunk collection (and its document states) after writes, at most every `interval_s` under load."""

    def __init__(self, store: MilvusChunkStore, collection: str, interval_s: float) -> None:
        self.store, self.interval_s = store, interval_s
        self.collections = [collection, MilvusDocumentStates.collection_for(collection)]
        self._dirty_since: float | None = None
        self._last_write = 0.0
        self.flushes = 0
        self._batch_or_flush = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def between_flushes(self) -> AsyncIterator[None]:
        """Hold off flushes while the block runs (an indexer batch: its state reads and its writes); waits for a
        flush already running."""
        async with self._batch_or_flush:
            yield

    def wrote(self) -> None:
        """Called after every write to the collection."""
        now = time.monotonic()
        self._last_write = now
        if self._dirty_since is None:
            self._dirty_since = now

    def due(self, now: float) -> bool:
        """Whether unsealed writes have paused long enough, or waited long enough."""
        if self._dirty_since is None or self.interval_s <= 0:
            return False
        return now - self._last_write >= IDLE_S or now - self._dirty_since >= self.interval_s

    async def seal(self) -> None:
        """Flush now (in a thread): the requests between batches, the wait for persistence beside them. When a
        request fails the writes stay marked and the next tick tries again."""
        async with self._batch_or_flush:
            persisted = await self._request()
        for future in persisted:  # the next seal only after this one is persisted: never a pile of flushes
            try:
                await asyncio.to_thread(self.store.call, future.result)
            except RagbusError as exc:
                log.info("flush of %s sealed, not confirmed persisted: %s", self.collections[0], exc)

    async def _request(self) -> list[Any]:
        started, self._dirty_since = self._dirty_since, None
        persisted = []
        try:
            for name in self.collections:
                persisted.append(await asyncio.to_thread(self.store.request_flush, name))
        except RagbusError as exc:
            self._dirty_since = started  # the earliest unsealed write (any write since is later)
            log.info("flush of %s deferred: %s", self.collections[0], exc)
            return persisted
        self.flushes += 1
        return persisted

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            await asyncio.sleep(TICK_S)
            if self.due(time.monotonic()):
                await self.seal()


@contextlib.asynccontextmanager
async def sealing(store: MilvusChunkStore, collection: str, interval_s: float) -> AsyncIterator[CollectionSealer]:
    """A sealer running in the background for as long as the context is open."""
    sealer = CollectionSealer(store, collection, interval_s)
    task = asyncio.create_task(sealer.run(), name=f"seal {collection}")
    try:
        yield sealer
    finally:
        await stop_task(task)
