"""Vector search over read replicas: round-robin, a circuit breaker per replica, failover, a timeout per call."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from query_api import metrics
from query_api.breaker import CircuitBreaker
from query_api.failover import AllFailed, first_answer
from query_api.search_batches import SearchBatch, SearchBatcher, SearchShape
from ragbus.background import stop_task
from ragbus.errors import PermanentError, RagbusError, TransientError
from ragbus.milvus.filters import MetadataWhere
from ragbus.milvus.rows import ChunkHit
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import ApiSettings, MilvusSettings

log = logging.getLogger(__name__)
ALIAS_REFRESH_S = 1.0
# A replica that times out, fails in ragbus's code or loses its connection is skipped for the next one.
_REPLICA_FAILURES = (TimeoutError, RagbusError, OSError)


def _retrieve_exception(lookup: asyncio.Future[str]) -> None:
    # Its waiters may all have been cancelled: the error is logged here rather than "never retrieved".
    if not lookup.cancelled() and (exc := lookup.exception()) is not None:
        log.warning("alias lookup failed: %r", exc)


class SearchUnavailable(TransientError):
    """No replica could answer the search; the API answers 503 with Retry-After."""

    code = "search_unavailable"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SearchQuery:
    """What narrows and shapes one search besides the vector: filter, collection, and the text for BM25."""

    where: MetadataWhere | None = None
    collection: str | None = None  # default: through the alias
    text: str | None = None  # hybrid retrieval where the collection has BM25; None = dense only
    rrf_k: int = 60
    # Per replica URI, the engine timestamp to read at (ragbus.write_marks); a replica without one reads at
    # RAGBUS_MILVUS_CONSISTENCY_LEVEL.
    written: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Retrieved:
    """A query's vector and its passages, best first."""

    vector: np.ndarray
    hits: list[ChunkHit]


class MilvusReplica:
    """One Milvus endpoint the API reads from, connected on first use (a replica down at start-up is fine)."""

    def __init__(self, settings: MilvusSettings, uri: str, api: ApiSettings) -> None:
        self.settings, self.uri = settings, uri
        self.breaker = CircuitBreaker(f"milvus:{uri}", api.replica_breaker_failures, api.replica_breaker_cooldown_s)
        self._store: MilvusChunkStore | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The replica's URI."""
        return self.uri

    def search(self, batch: SearchBatch) -> list[list[ChunkHit]]:
        """Blocking search of a batch of questions on this replica (MilvusChunkStore.search_many)."""
        store, shape = self._connected(), batch.shape
        return store.search_many(
            batch.vectors,
            shape.top_k,
            shape.tenant,
            shape.where,
            collection=shape.collection,
            texts=batch.texts,
            rrf_k=shape.rrf_k,
            written=batch.written.get(self.uri),
        )

    def alias_target(self) -> str | None:
        """Blocking: the collection the alias points at on this replica."""
        return self._connected().alias_target()

    def _connected(self) -> MilvusChunkStore:
        """The store, connected on first use (by one thread)."""
        with self._lock:
            if self._store is None:
                self._store = MilvusChunkStore(self.settings, self.uri)
            return self._store

    def close(self) -> None:
        """Close the connection, if one was made."""
        if self._store is not None:
            self._store.close()


class ReplicatedRetriever:
    """Searches the next replica whose breaker allows it; on failure or timeout, the next one."""

    def __init__(self, replicas: list[MilvusReplica], timeout_s: float, max_batch: int = 1) -> None:
        if not replicas:
            raise ValueError("at least one replica")
        self.replicas, self.timeout_s = replicas, timeout_s
        self.batches = SearchBatcher(self._search_batch, max_batch)
        self._next = itertools.cycle(range(len(replicas)))
        self._serving = ""
        self._first_lookup: asyncio.Future[str] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, milvus: MilvusSettings, uris: list[str], api: ApiSettings) -> ReplicatedRetriever:
        """One replica per URI of RAGBUS_MILVUS_READ_URIS."""
        return cls([MilvusReplica(milvus, uri, api) for uri in uris], api.search_timeout_s, api.batch_max)

    async def aclose(self) -> None:
        """Stop the alias lookups and close every replica's connection."""
        self._closed = True
        await self.batches.aclose()
        for task in (self._first_lookup, self._refresher):
            if task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await stop_task(task)
        for replica in self.replicas:
            replica.close()

    async def serving_collection(self) -> str:
        """The collection behind the alias ("" while never reachable), at most ALIAS_REFRESH_S and a lookup old.

        Part of every query-cache key: when a reindex moves the alias, no answer from the old collection is served.
        Until a first lookup succeeds, callers wait for one (concurrent callers share it; after a failure the next
        caller tries again). Its success starts a task that looks the alias up again every ALIAS_REFRESH_S, so no
        later query pays that round trip.
        """
        if self._refresher is None and not self._closed:
            if self._first_lookup is None or self._first_lookup.done():
                self._first_lookup = asyncio.ensure_future(self._look_up_first())
                self._first_lookup.add_done_callback(_retrieve_exception)
            await asyncio.shield(self._first_lookup)
        return self._serving

    async def _look_up_first(self) -> str:
        serving = await self._look_up_alias()
        if not self._closed:
            self._refresher = asyncio.create_task(self._keep_alias_fresh(), name="alias-refresh")
        return serving

    async def _keep_alias_fresh(self) -> None:
        while not self._closed:  # a cancellation the lookup swallowed (ragbus.background) still ends the loop
            await asyncio.sleep(ALIAS_REFRESH_S)
            try:
                await self._look_up_alias()
            except Exception:  # replica failures are handled inside; anything else must not end the refreshes
                log.exception("alias lookup failed")

    async def _look_up_alias(self) -> str:
        def look_up(replica: MilvusReplica) -> Awaitable[str | None]:
            return asyncio.wait_for(asyncio.to_thread(replica.alias_target), timeout=self.timeout_s)

        try:
            target, _ = await first_answer(
                self.replicas, look_up, failures=_REPLICA_FAILURES, on_failure=_failed("alias lookup")
            )
        except AllFailed:
            return self._serving  # keep the last known target until a replica answers again
        self._serving = target or ""
        return self._serving

    async def search(
        self, vector: list[float], top_k: int, tenant: str, query: SearchQuery | None = None
    ) -> list[ChunkHit]:
        """The `top_k` chunks of `tenant` closest to `vector`; SearchUnavailable when no replica answers.

        `query.collection` is the one serving_collection() resolved for this query (its cache key names it);
        searching it rather than the alias keeps key and data in step while a server still resolves the alias the
        old way. Searches of one shape at the same time go as one call (query_api.search_batches).
        """
        asked = query or SearchQuery()
        hybrid = bool(asked.text and asked.text.strip())
        shape = SearchShape(tenant, top_k, asked.where, asked.collection, hybrid, asked.rrf_k)
        return await self.batches.search(shape, vector, asked.text if hybrid else None, asked.written)

    async def _search_batch(self, batch: SearchBatch) -> list[list[ChunkHit]]:
        start = next(self._next)

        def search(replica: MilvusReplica) -> Awaitable[list[list[ChunkHit]]]:
            return asyncio.wait_for(asyncio.to_thread(replica.search, batch), timeout=self.timeout_s)

        try:
            found, _ = await first_answer(
                self.replicas[start:] + self.replicas[:start],
                search,
                failures=_REPLICA_FAILURES,
                on_failure=_failed("search"),
                refusals=(PermanentError,),  # the replica answered: the request itself was refused
            )
        except AllFailed as exc:
            retry_after = min((r.breaker.retry_after_s() for r in self.replicas), default=1.0)
            raise SearchUnavailable(
                f"vector search unavailable on every replica: {exc}", retry_after_s=max(1.0, math.ceil(retry_after))
            ) from None
        return found


def _failed(what: str) -> Callable[[MilvusReplica, Exception], None]:
    def failed(replica: MilvusReplica, exc: Exception) -> None:
        metrics.REPLICA_FAILOVERS.labels(replica.uri).inc()
        log.warning("%s on %s failed, trying the next replica: %s", what, replica.uri, exc)

    return failed
