"""Query cache in Redis with exact invalidation.

An answer is cached under (tenant, normalized query, parameters), stamped with the tenant generation it was computed
at; one MGET reads the generation, the change sequence and the entry, and an entry of an older generation is a
miss. Every answer is also listed in a reverse index per cited document, written atomically with the answer by a
Lua script, so invalidating a document deletes exactly the answers that cite it, without SCAN.

What an index change does to the cache (applied by `invalidate`, from the cache-invalidation topic):
- delete of a document: the answers citing it are deleted; others stay valid (a delete cannot make an answer
  cite something that no longer exists unless it cited it).
- upsert (create or update): the answers citing it are deleted, and the tenant's generation moves on, because the
  new text may now belong in answers that did not cite it. Only that tenant's answers are affected.
Every change also bumps the tenant's change sequence. An answer is written only if the sequence is still what it
was before retrieval began, so an answer computed from an index that changed meanwhile is never cached.

All keys of one tenant share the `{tenant}` hash tag: the scripts touch them together on Redis Cluster too.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from query_api import metrics
from query_api.models import QueryResponse
from ragbus.errors import TransientError
from ragbus.redis_store import REDIS_DOWN

log = logging.getLogger(__name__)

# KEYS: seq, entry, last-good, reverse-index keys...; ARGV: expected seq, payload, ttl, last-good ttl.
_PUT = """
if (redis.call('GET', KEYS[1]) or '0') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[4])
for i = 4, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[2], KEYS[3])
  redis.call('EXPIRE', KEYS[i], ARGV[4])
end
return 1
"""
# KEYS: seq, gen, reverse-index key; ARGV: bump generation (1/0). Returns the number of answers deleted.
_INVALIDATE = """
redis.call('INCR', KEYS[1])
if ARGV[1] == '1' then redis.call('INCR', KEYS[2]) end
local members = redis.call('SMEMBERS', KEYS[3])
for i = 1, #members, 500 do
  redis.call('DEL', unpack(members, i, math.min(i + 499, #members)))
end
redis.call('DEL', KEYS[3])
return #members
"""


def normalize_query(query: str) -> str:
    """Case- and whitespace-insensitive form of a query."""
    return " ".join(query.casefold().split())


@dataclass(frozen=True)
class CacheKeys:
    """Names of the query-cache keys of one deployment (`namespace`) and alias."""

    namespace: str
    alias: str

    def _tenant(self, tenant: str) -> str:
        return f"{self.namespace}:qc:{self.alias}:{{{tenant}}}"

    def generation(self, tenant: str) -> str:
        """Bumped when a document of `tenant` is created or updated: part of every entry key."""
        return f"{self._tenant(tenant)}:gen"

    def sequence(self, tenant: str) -> str:
        """Bumped on every change of `tenant`: an answer computed across a change is not written."""
        return f"{self._tenant(tenant)}:seq"

    def entry(self, tenant: str, fingerprint: str) -> str:
        """A cached answer (a CachedAnswer: the answer and the generation it was computed at)."""
        return f"{self._tenant(tenant)}:a:{fingerprint}"

    def last_good(self, tenant: str, fingerprint: str) -> str:
        """The latest answer to a query at any generation, served only while vector search is down."""
        return f"{self._tenant(tenant)}:last:{fingerprint}"

    def citing(self, tenant: str, doc_id: str) -> str:
        """Set of the entry keys whose answer cites `doc_id` (the reverse index)."""
        return f"{self._tenant(tenant)}:doc:{hashlib.sha256(doc_id.encode()).hexdigest()[:32]}"

    def flight_lock(self, entry_key: str) -> str:
        """Lock held by the one API process computing `entry_key`."""
        return f"{entry_key}:lock"


@dataclass(frozen=True)
class CacheSlot:
    """Where one query's answer is cached, and the generation and change sequence seen before it was computed."""

    tenant: str
    fingerprint: str
    key: str
    sequence: int
    generation: int


class CachedAnswer(BaseModel):
    """What an entry holds."""

    generation: int
    response: QueryResponse


class QueryCache:
    """Answers cached until their TTL or until a change of their tenant's documents makes them stale."""

    def __init__(self, redis: Redis, keys: CacheKeys, ttl_s: int) -> None:
        self.redis, self.keys, self.ttl_s = redis, keys, ttl_s
        self._put = redis.register_script(_PUT)
        self._invalidate = redis.register_script(_INVALIDATE)

    @property
    def enabled(self) -> bool:
        """False when RAGBUS_REDIS_QUERY_CACHE_TTL_S is 0."""
        return self.ttl_s > 0

    async def lookup(self, tenant: str, query: str, params: str) -> tuple[CacheSlot, QueryResponse | None]:
        """A query's slot now and its cached answer (None: a miss), in one round trip; TransientError when Redis
        is down."""
        fingerprint = hashlib.sha256(f"{normalize_query(query)}\x00{params}".encode()).hexdigest()
        key = self.keys.entry(tenant, fingerprint)
        try:
            generation, sequence, raw = await self.redis.mget(
                self.keys.generation(tenant), self.keys.sequence(tenant), key
            )
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc
        slot = CacheSlot(tenant, fingerprint, key, int(sequence or 0), int(generation or 0))
        return slot, self._counted(_answer(raw, slot.generation))

    async def get(self, slot: CacheSlot) -> QueryResponse | None:
        """The slot's answer if cached at the tenant's current generation; None when not (or Redis is down)."""
        try:
            generation, raw = await self.redis.mget(self.keys.generation(slot.tenant), slot.key)
        except REDIS_DOWN as exc:
            log.warning("query cache unavailable: %s", exc)
            return None
        return self._counted(_answer(raw, int(generation or 0)))

    async def last_good(self, slot: CacheSlot) -> QueryResponse | None:
        """The latest answer to this query at any generation (still removed when a document it cites changes)."""
        try:
            raw = await self.redis.get(self.keys.last_good(slot.tenant, slot.fingerprint))
        except REDIS_DOWN as exc:
            log.warning("query cache unavailable: %s", exc)
            return None
        return _answer(raw, None)

    @staticmethod
    def _counted(response: QueryResponse | None) -> QueryResponse | None:
        metrics.CACHE_LOOKUPS.labels("hit" if response else "miss").inc()
        return response

    async def put(self, slot: CacheSlot, response: QueryResponse) -> bool:
        """Cache a response and index it under every cited document, unless the tenant changed meanwhile."""
        if not self.enabled:
            return False
        doc_ids = sorted({c.doc_id for c in response.citations})
        keys = [
            self.keys.sequence(slot.tenant),
            slot.key,
            self.keys.last_good(slot.tenant, slot.fingerprint),
            *(self.keys.citing(slot.tenant, d) for d in doc_ids),
        ]
        stored = response.model_copy(update={"cached": False, "took_ms": 0.0})
        payload = CachedAnswer(generation=slot.generation, response=stored).model_dump_json()
        try:
            # The last-good copy lives longer: it only matters while vector search is down.
            written = await self._put(keys=keys, args=[slot.sequence, payload, self.ttl_s, self.ttl_s * 4])
        except REDIS_DOWN as exc:
            log.warning("query cache unavailable: %s", exc)
            return False
        return bool(written)

    async def invalidate(self, tenant: str, doc_id: str, *, upsert: bool) -> int:
        """Apply one document change: delete the answers citing it; an upsert also moves the generation on."""
        keys = [self.keys.sequence(tenant), self.keys.generation(tenant), self.keys.citing(tenant, doc_id)]
        try:
            deleted = int(await self._invalidate(keys=keys, args=["1" if upsert else "0"]))
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc
        metrics.CACHE_ENTRIES_DROPPED.inc(deleted)
        return deleted


def _answer(raw: bytes | str | None, generation: int | None) -> QueryResponse | None:
    """The response an entry holds if it was computed at `generation` (None: any); an unreadable entry is a miss."""
    if not raw:
        return None
    try:
        entry = CachedAnswer.model_validate_json(raw)
    except ValidationError as exc:  # written by another version of the API, or damaged
        log.warning("query cache entry unreadable, treated as a miss: %s", str(exc)[:200])
        return None
    return entry.response if generation is None or entry.generation == generation else None
