"""Query cache in Redis, keyed by tenant, normalized query, parameters and the index generation."""

from __future__ import annotations

import hashlib
import logging

from redis.asyncio import Redis

from query_api.models import QueryResponse
from ragbus.redis_store import REDIS_DOWN, IndexGeneration, KeySpace

log = logging.getLogger(__name__)


def normalize_query(query: str) -> str:
    """Case- and whitespace-insensitive form of a query."""
    return " ".join(query.casefold().split())


class QueryCache:
    """Answers cached until their TTL or until the index changes (the generation moves on), whichever is first."""

    def __init__(self, redis: Redis, keys: KeySpace, alias: str, ttl_s: int) -> None:
        self.redis, self.keys, self.alias, self.ttl_s = redis, keys, alias, ttl_s
        self.generation = IndexGeneration(redis, keys, alias)

    async def key_for(self, tenant: str, query: str, top_k: int, mode: str) -> str:
        """Cache key of a query at the current index generation."""
        fingerprint = hashlib.sha256(f"{tenant}\x00{normalize_query(query)}\x00{top_k}\x00{mode}".encode()).hexdigest()
        return self.keys.query(self.alias, await self.generation.current(), fingerprint)

    async def get(self, key: str) -> QueryResponse | None:
        """The cached response, or None (also when Redis is down: caching is an optimization)."""
        if self.ttl_s == 0:
            return None
        try:
            raw = await self.redis.get(key)
        except REDIS_DOWN as exc:
            log.warning("query cache unavailable: %s", exc)
            return None
        return QueryResponse.model_validate_json(raw) if raw else None

    async def put(self, key: str, response: QueryResponse) -> None:
        """Cache a response (best effort)."""
        if self.ttl_s == 0:
            return
        try:
            await self.redis.set(key, response.model_dump_json(), ex=self.ttl_s)
        except REDIS_DOWN as exc:
            log.warning("query cache unavailable: %s", exc)
