"""Per-credential rate limit in Redis: a fixed window counted atomically by a Lua script, shared by every
API process that uses the same Redis namespace."""

from __future__ import annotations

import hashlib
import logging
import math
import time

from redis.asyncio import Redis

from query_api import metrics
from query_api.errors import RateLimited
from ragbus.redis_store import REDIS_DOWN

log = logging.getLogger(__name__)

# INCR and PEXPIRE in one step: no key is ever left without its expiry, whichever process counts first.
_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisRateLimiter:
    """At most `limit` requests per `window_s` per subject; 0 disables it."""

    def __init__(self, redis: Redis, namespace: str, limit: int, window_s: int) -> None:
        self.redis, self.namespace, self.limit, self.window_s = redis, namespace, limit, window_s
        self._script = redis.register_script(_COUNT)

    def window(self, tenant: str, subject: str) -> tuple[str, int]:
        """Redis key of the subject's current clock-aligned window, and the milliseconds until it ends.

        The key names the tenant: two tenants' tokens with the same subject never share a counter."""
        now_ms = int(time.time() * 1000)
        length_ms = self.window_s * 1000
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        return f"{self.namespace}:rl:{tenant}:{digest}:{now_ms // length_ms}", length_ms - now_ms % length_ms

    async def check(self, tenant: str, subject: str) -> None:
        """Count one request; RateLimited (with the seconds until the window ends) when over the limit."""
        if self.limit == 0:
            return
        try:
            key, left_ms = self.window(tenant, subject)
            count = await self._script(keys=[key], args=[left_ms + 1000])
        except REDIS_DOWN as exc:
            # Fail open: a Redis outage must not take queries down; it is logged and counted.
            metrics.ERRORS.labels("rate_limiter_unavailable").inc()
            log.warning("rate limiter unavailable, request allowed: %s", exc)
            return
        if int(count) > self.limit:
            raise RateLimited(
                f"rate limit of {self.limit} requests per {self.window_s}s exceeded", math.ceil(left_ms / 1000)
            )
