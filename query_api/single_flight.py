"""Single flight: concurrent identical cache misses compute once.

Within a process, the first caller computes and the others await its future. Across API processes, the first
takes a short Redis lock (SET NX PX); the others poll the cache for its answer until the lock goes away, and
compute themselves only if no answer appeared (the holder failed or its answer was not cacheable).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from redis.asyncio import Redis

from query_api import metrics
from ragbus.redis_store import REDIS_DOWN

log = logging.getLogger(__name__)
T = TypeVar("T")
POLL_S = 0.05
# Deletes the lock only if it is still ours (it may have expired and been taken by another process).
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class SingleFlight:
    """Coalesces concurrent computations of the same key."""

    def __init__(self, redis: Redis, lock_s: float) -> None:
        self.redis, self.lock_s = redis, lock_s
        self._flights: dict[str, asyncio.Future[object]] = {}
        self._release = redis.register_script(_RELEASE)

    async def run(
        self,
        key: str,
        lock_key: str | None,
        compute: Callable[[], Awaitable[T]],
        cached: Callable[[], Awaitable[T | None]],
    ) -> tuple[T, bool]:
        """(result, shared): `shared` is True when another caller's computation answered this one."""
        flight = self._flights.get(key)
        if flight is not None:
            metrics.SINGLE_FLIGHT_SHARED.inc()
            return cast(T, await asyncio.shield(flight)), True
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        try:
            value, shared = await self._across_processes(lock_key, compute, cached)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs "never retrieved"
            raise
        else:
            future.set_result(value)
            return value, shared
        finally:
            del self._flights[key]

    async def _across_processes(
        self,
        lock_key: str | None,
        compute: Callable[[], Awaitable[T]],
        cached: Callable[[], Awaitable[T | None]],
    ) -> tuple[T, bool]:
        if lock_key is None:
            return await compute(), False
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.lock_s
        while True:
            try:
                acquired = await self.redis.set(lock_key, token, nx=True, px=int(self.lock_s * 1000))
            except REDIS_DOWN as exc:
                log.warning("single-flight lock unavailable, computing: %s", exc)
                return await compute(), False
            if acquired:
                try:
                    return await compute(), False
                finally:
                    try:
                        await self._release(keys=[lock_key], args=[token])
                    except REDIS_DOWN as exc:
                        log.warning("single-flight lock not released (it expires): %s", exc)
            # Another process computes this answer: wait for it to land in the cache.
            while time.monotonic() < deadline:
                await asyncio.sleep(POLL_S)
                # The lock first, then the cache: the holder writes its answer before it releases the lock.
                try:
                    held = bool(await self.redis.exists(lock_key))
                except REDIS_DOWN:
                    held = False
                if (found := await cached()) is not None:
                    metrics.SINGLE_FLIGHT_SHARED.inc()
                    return found, True
                if not held:
                    break  # the holder finished without a cacheable answer: try to take the lock
            if time.monotonic() >= deadline:
                return await compute(), False
