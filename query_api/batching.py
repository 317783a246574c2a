"""Opportunistic batches: work that arrives while a call of its kind is in flight goes together in the next call.

The query API batches concurrent questions twice: one model call encodes them (query_api.service) and one Milvus
call searches them (query_api.search_batches). Nothing waits for a batch to fill: an item whose key has no call in
flight is sent at once, alone, so a lone question costs what it did; those arriving meanwhile go together in the
next call, at most `max_batch` at a time (with `max_batch` 1, every item is its own call, sent at once, however many
are in flight). A failed call fails each of its items with that error; an item whose
caller gave up is dropped from its batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ragbus.background import stop_task

K = TypeVar("K", bound=Hashable)
Item = TypeVar("Item")
R = TypeVar("R")


@dataclass
class _Waiting(Generic[Item, R]):
    item: Item
    answer: asyncio.Future[R]


class Batcher(Generic[K, Item, R]):
    """Calls `run(key, items)` (one result per item, in order) for the items waiting under each key, one call per key
    in flight."""

    def __init__(self, run: Callable[[K, list[Item]], Awaitable[list[R]]], max_batch: int, name: str) -> None:
        if max_batch < 1:
            raise ValueError(f"a batch holds at least one item, not {max_batch}")
        self.run, self.max_batch, self.name = run, max_batch, name
        self._waiting: dict[K, list[_Waiting[Item, R]]] = {}
        self._senders: dict[K, asyncio.Task[None]] = {}
        self._closed = False
        self.calls = 0  # calls made, for tests

    async def submit(self, key: K, item: Item) -> R:
        """The result of `item`, computed alone or with others of its key."""
        if self._closed:
            raise RuntimeError(f"{self.name}: closed")
        if self.max_batch == 1:  # no batches: each item its own call, as many in flight as callers
            self.calls += 1
            return (await self.run(key, [item]))[0]
        waiting = _Waiting[Item, R](item, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(key, []).append(waiting)
        if key not in self._senders:
            self._senders[key] = asyncio.create_task(self._send(key), name=self.name)
        return await waiting.answer

    async def aclose(self) -> None:
        """Stop sending; the items still waiting fail as cancelled."""
        self._closed = True
        for task in list(self._senders.values()):
            await stop_task(task)

    async def _send(self, key: K) -> None:
        try:
            while key in self._waiting:
                waiting = self._waiting[key]
                batch, rest = waiting[: self.max_batch], waiting[self.max_batch :]
                if rest:
                    self._waiting[key] = rest
                else:
                    del self._waiting[key]
                await self._answer(key, [w for w in batch if not w.answer.done()])
        finally:
            self._senders.pop(key, None)
            for stranded in self._waiting.pop(key, []):  # cancelled: nobody will send them
                stranded.answer.cancel()

    async def _answer(self, key: K, batch: list[_Waiting[Item, R]]) -> None:
        if not batch:
            return
        self.calls += 1
        try:
            results = await self.run(key, [w.item for w in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.answer.cancel()
            raise
        except Exception as exc:  # each caller handles it as it would its own call's
            for waiting in batch:
                if not waiting.answer.done():
                    waiting.answer.set_exception(exc)
            return
        for waiting, result in zip(batch, results, strict=True):  # lengths checked above
            if not waiting.answer.done():
                waiting.answer.set_result(result)
