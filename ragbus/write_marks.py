"""Write marks: the Milvus timestamp of the indexer's last write to each collection, so reads wait for no more.

A Strong search on the real engine waits for the proxy's next time tick (20 to 40 ms, bench.milvus_tick), although
nearly every query asks about data written long before. The indexer records, after each batch it applied, the
engine's timestamp of that batch's last write (a hybrid timestamp of the engine's own clock); the query API
searches with that timestamp as its guarantee (pymilvus's "Customized" consistency). The engine then serves at once
when it has applied those writes, and waits only while it has not: every write the indexer acknowledged is visible
to the next query, as under Strong, with no tick to wait for. The cache invalidation comes after the mark. The
document status reads Milvus itself and can show a version a moment before its mark is recorded: a caller that
must see its change asks with `min_versions`, whose search reads at the configured level.

The marks live in one Redis hash per collection, a field per Milvus URI: each deployment has its own clock, and a
read replica is searched at its own indexer's mark. A batch whose writes give no timestamp removes the mark, so the
collection is read at RAGBUS_MILVUS_CONSISTENCY_LEVEL, as is one without a mark: milvus-lite (its writes carry no
timestamp), Milvus 2.6 and later (stamps ordered per channel only: MilvusConnection.last_write_ts), a URI whose
indexer has not written yet. Recording keeps the
larger timestamp (the indexers of several partitions write one collection): compared as decimal strings, since
Redis's Lua numbers are doubles and a hybrid timestamp needs 59 bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ragbus.errors import TransientError
from ragbus.redis_store import REDIS_DOWN, KeySpace

_KEEP_LARGER = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local new = ARGV[2]
if #new > #current or (#new == #current and new > current) then
  redis.call('HSET', KEYS[1], ARGV[1], new)
  return 1
end
return 0
"""


class WriteMarks:
    """Records and reads the last write timestamp per (collection, Milvus URI)."""

    def __init__(self, redis: Redis, keys: KeySpace) -> None:
        self.redis, self.keys = redis, keys
        self._keep_larger: Any = redis.register_script(_KEEP_LARGER)

    async def record(self, collection: str, uri: str, timestamp: int) -> None:
        """Raise the mark of `collection` on `uri` to `timestamp` (never lowers it); TransientError if Redis is down."""
        if timestamp <= 0:
            raise ValueError(f"a Milvus write timestamp is positive, not {timestamp}")
        try:
            await self._keep_larger(keys=[self.keys.milvus_writes(collection)], args=[uri, str(timestamp)])
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc

    async def forget(self, collection: str, uri: str) -> None:
        """Drop the mark of `collection` on `uri`: its last write gave no timestamp, so searches there must read at
        the configured level, not at an older mark. TransientError if Redis is down."""
        try:
            await self.redis.hdel(self.keys.milvus_writes(collection), uri)
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc

    async def read(self, collection: str, uris: Sequence[str]) -> dict[str, int]:
        """The marks of `collection` on those URIs that have one; TransientError if Redis is down."""
        if not uris:
            return {}
        try:
            values = await self.redis.hmget(self.keys.milvus_writes(collection), list(uris))
        except (*REDIS_DOWN, RedisError) as exc:  # whatever fails, the search reads at the configured level
            raise TransientError(f"write marks unreadable: {exc}") from exc
        return {uri: int(cast(bytes, value)) for uri, value in zip(uris, values, strict=True) if value}
