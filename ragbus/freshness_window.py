"""Freshness over recent minutes, per tenant: how long each change took from its event to searchable, in Redis.

The API's cache-invalidation consumer records every applied change (it carries the event's `produced_at` and the
indexer's `indexed_at`) in one sorted set per tenant, scored by when it became searchable; `GET /v1/status` reads
the window back as p50/p95 and per-minute ingest counts, which the web page plots. Every API process shares it,
whichever partitions of the invalidation topic it consumes. Entries older than the window, or past a bound on
their number, are trimmed as new ones arrive, and the key expires when a tenant goes quiet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from pydantic import BaseModel, Field
from redis.asyncio import Redis

WINDOW_S = 15 * 60
MAX_ENTRIES = 20_000  # a bulk ingest of more changes within the window keeps the newest


def freshness_key(namespace: str, tenant: str) -> str:
    """The tenant's window (docs/operations.md, "Redis keys")."""
    return f"{namespace}:fresh:{tenant}"


class MinuteOut(BaseModel):
    """One minute of the window."""

    minute: int = Field(description="Unix time of the minute's start.")
    documents: int = Field(description="Changes that became searchable in that minute.")
    p95_s: float | None = Field(None, description="95th percentile of their freshness, seconds.")


class FreshnessOut(BaseModel):
    """Freshness (event produced -> searchable) of the tenant's changes over recent minutes."""

    window_s: int = Field(WINDOW_S, description="How far back the figures reach.")
    documents: int = Field(0, description="Changes that became searchable within the window.")
    p50_s: float | None = Field(None, description="Median freshness, seconds (null without changes).")
    p95_s: float | None = Field(None, description="95th percentile of freshness, seconds.")
    per_minute: list[MinuteOut] = Field(default_factory=list, description="Oldest first, minutes with changes.")
    error: str | None = Field(None, description="Why it could not be read.")


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (`share` in 0..1) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class FreshnessWindow:
    """Writes and reads the per-tenant windows."""

    redis: Redis
    namespace: str
    window_s: int = WINDOW_S
    _seq: int = field(default=0, init=False)

    async def record(self, tenant: str, event_id: str, produced_at: datetime, indexed_at: datetime) -> None:
        """One change became searchable (idempotent per event: a redelivered invalidation records it once)."""
        key = freshness_key(self.namespace, tenant)
        seconds = max(0.0, (indexed_at - produced_at).total_seconds())
        at_ms = int(indexed_at.timestamp() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {f"{event_id}|{seconds:.3f}": at_ms})
            pipe.zremrangebyscore(key, "-inf", at_ms - self.window_s * 1000)
            pipe.zremrangebyrank(key, 0, -MAX_ENTRIES - 1)
            pipe.expire(key, self.window_s * 2)
            await pipe.execute()

    async def read(self, tenant: str, now: float) -> FreshnessOut:
        """The window ending at `now` (unix seconds)."""
        key = freshness_key(self.namespace, tenant)
        rows = await self.redis.zrangebyscore(key, int((now - self.window_s) * 1000), "+inf", withscores=True)
        minutes: dict[int, list[float]] = {}
        values: list[float] = []
        for member, at_ms in cast("list[tuple[bytes | str, float]]", rows):
            seconds = float((member.decode() if isinstance(member, bytes) else member).rsplit("|", 1)[1])
            values.append(seconds)
            minutes.setdefault(int(at_ms // 60_000) * 60, []).append(seconds)
        return FreshnessOut(
            window_s=self.window_s,
            documents=len(values),
            p50_s=percentile(values, 0.5),
            p95_s=percentile(values, 0.95),
            per_minute=[
                MinuteOut(minute=minute, documents=len(seen), p95_s=percentile(seen, 0.95))
                for minute, seen in sorted(minutes.items())
            ],
        )
