"""The API follows the alias without a query ever waiting for a Milvus round trip after the first one.

The replica here is a stand-in whose alias lookup takes as long as the test says: what is tested is the retriever's
scheduling, not Milvus (tests/integration/test_answering_cache.py follows a real alias switch on a real server).
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from query_api import retrieval
from query_api.breaker import CircuitBreaker
from query_api.retrieval import ReplicatedRetriever


class SlowAliasReplica:
    """Answers alias lookups with `target` after `delay_s`, counting them."""

    def __init__(self, target: str, delay_s: float) -> None:
        self.uri, self.name, self.target, self.delay_s = "stand-in", "stand-in", target, delay_s
        self.failures: list[Exception] = []  # raised by the next lookups, in order
        self.breaker = CircuitBreaker("milvus:stand-in", 3, 10.0)
        self.lookups = 0
        self._lock = threading.Lock()

    def alias_target(self) -> str:
        time.sleep(self.delay_s)
        with self._lock:
            self.lookups += 1
            if self.failures:
                raise self.failures.pop(0)
        return self.target

    def close(self) -> None:
        """Nothing to close."""


def test_only_the_first_query_waits_and_a_switch_is_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrieval, "ALIAS_REFRESH_S", 0.2)
    replica = SlowAliasReplica("chunks_v1", delay_s=0.15)
    retriever = ReplicatedRetriever([replica], timeout_s=5)  # type: ignore[list-item]

    async def scenario() -> None:
        began = time.perf_counter()
        first = await asyncio.gather(*(retriever.serving_collection() for _ in range(5)))
        assert first == ["chunks_v1"] * 5 and replica.lookups == 1  # concurrent first callers share one lookup
        assert time.perf_counter() - began >= 0.15

        replica.target = "chunks_v2"  # a reindex moved the alias
        waits, seen = [], []
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            began = time.perf_counter()
            seen.append(await retriever.serving_collection())
            waits.append(time.perf_counter() - began)
            await asyncio.sleep(0.01)
        # Refreshed in the background: no later call waited for one of the 0.15 s lookups.
        assert max(waits) < 0.12  # a lookup takes 0.15 s
        switched = seen.index("chunks_v2")
        assert set(seen[switched:]) == {"chunks_v2"}
        assert 3 <= replica.lookups <= 12  # every ALIAS_REFRESH_S, not once per query (about 200 calls here)
        await retriever.aclose()
        await asyncio.sleep(0.2)  # a lookup already running in its thread finishes
        lookups = replica.lookups
        await asyncio.sleep(0.5)
        assert replica.lookups == lookups  # closed: no more lookups

    asyncio.run(scenario())


def test_a_failed_first_lookup_is_tried_again_and_the_refreshes_outlive_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrieval, "ALIAS_REFRESH_S", 0.1)
    replica = SlowAliasReplica("chunks_v1", delay_s=0.0)
    replica.failures.append(RuntimeError("a bug, not a replica failure"))
    retriever = ReplicatedRetriever([replica], timeout_s=5)  # type: ignore[list-item]

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="a bug"):
            await retriever.serving_collection()
        assert await retriever.serving_collection() == "chunks_v1"  # the next caller looked it up again
        replica.failures.append(RuntimeError("another"))  # the background refresh meets it, logs it, goes on
        replica.target = "chunks_v2"
        deadline = time.monotonic() + 3
        while await retriever.serving_collection() != "chunks_v2" and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert await retriever.serving_collection() == "chunks_v2"
        await retriever.aclose()

    asyncio.run(scenario())


def test_a_retriever_closed_before_its_first_lookup_starts_no_refreshes() -> None:
    replica = SlowAliasReplica("chunks_v1", delay_s=0.3)
    retriever = ReplicatedRetriever([replica], timeout_s=5)  # type: ignore[list-item]

    async def scenario() -> None:
        asking = asyncio.ensure_future(retriever.serving_collection())
        await asyncio.sleep(0.05)
        await retriever.aclose()  # while the first lookup runs
        with pytest.raises(asyncio.CancelledError):
            await asking
        await asyncio.sleep(0.5)
        assert retriever._refresher is None and replica.lookups <= 1
        assert await retriever.serving_collection() == ""  # closed: answers without looking the alias up
        assert replica.lookups <= 1

    asyncio.run(scenario())
