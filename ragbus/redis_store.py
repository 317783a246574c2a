"""Redis access: one client per process, every key under the configured namespace."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ragbus.errors import TransientError
from ragbus.settings import RedisSettings

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)


def redis_options(settings: RedisSettings) -> dict[str, Any]:
    """Connection options beyond the URL: ACL user, password and TLS files (each only when set)."""
    options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5}
    if settings.username:
        options["username"] = settings.username
    if settings.password is not None:
        options["password"] = settings.password.get_secret_value()
    for option, path in (
        ("ssl_ca_certs", settings.ssl_ca_file),
        ("ssl_certfile", settings.ssl_cert_file),
        ("ssl_keyfile", settings.ssl_key_file),
    ):
        if path is not None:
            options[option] = str(path)
    return options


async def redis_answers(redis: Redis) -> bool:
    """Whether Redis answers a PING now."""
    try:
        return bool(await redis.ping())
    except REDIS_DOWN:
        return False


def open_redis(settings: RedisSettings) -> Redis:
    """A client for RAGBUS_REDIS_URL (lazy: the first command connects); a RedisCluster with RAGBUS_REDIS_CLUSTER.

    The cluster client answers every command ragbus sends (single-key commands, non-transactional pipelines split
    per slot, scripts whose keys share a `{hash tag}`), so callers keep one type.
    """
    url, options = settings.url.get_secret_value(), redis_options(settings)
    if settings.cluster:
        return cast(Redis, RedisCluster.from_url(url, **options))
    return Redis.from_url(url, health_check_interval=30, **options)


@dataclass(frozen=True)
class KeySpace:
    """Names of every Redis key ragbus writes."""

    namespace: str

    def embedding(self, model: str, text: str) -> str:
        """Cached embedding of `text` by `model` (content-addressed)."""
        digest = hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()
        return f"{self.namespace}:emb:{digest}"

    def extraction(self, extractor: str, doc_hash: str) -> str:
        """A document's last extracted text by `extractor` (a version), with the hash of its original."""
        return f"{self.namespace}:extracted:{extractor}:{doc_hash}"

    def embedding_cache_stats(self) -> str:
        """Hash of embedding cache lookups by result (hit, miss), for `ragbus status`."""
        return f"{self.namespace}:stats:embedding-cache"

    def generation(self, alias: str) -> str:
        """Counter bumped whenever what `alias` serves changes; part of every query-cache key."""
        return f"{self.namespace}:gen:{alias}"

    def query(self, alias: str, generation: int, fingerprint: str) -> str:
        """A cached answer."""
        return f"{self.namespace}:q:{alias}:{generation}:{fingerprint}"

    def milvus_writes(self, collection: str) -> str:
        """Hash: per Milvus URI, the timestamp of the indexer's last write to `collection` (ragbus.write_marks)."""
        return f"{self.namespace}:written:{collection}"


class RedisEmbeddingCache:
    """Embeddings keyed by model and content hash, so unchanged text is never embedded twice."""

    def __init__(self, redis: Redis, keys: KeySpace, model: str, ttl_s: int) -> None:
        self.redis, self.keys, self.model, self.ttl_s = redis, keys, model, ttl_s

    async def get_many(self, texts: list[str]) -> list[np.ndarray | None]:
        """Cached vectors in order of `texts` (None where missing)."""
        if not texts:
            return []
        try:
            # One GET per key in a non-transactional pipeline, not MGET: on Redis Cluster the keys (content
            # hashes) live on every slot, and the cluster pipeline sends each node its own keys.
            async with self.redis.pipeline(transaction=False) as pipe:
                for text in texts:
                    pipe.get(self.keys.embedding(self.model, text))
                raw = await pipe.execute()
            hits = sum(v is not None for v in raw)
            async with self.redis.pipeline(transaction=False) as pipe:  # shared by every embedder replica
                pipe.hincrby(self.keys.embedding_cache_stats(), "hit", hits)
                pipe.hincrby(self.keys.embedding_cache_stats(), "miss", len(raw) - hits)
                await pipe.execute()
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc
        # decode_responses is off: values are bytes.
        return [None if v is None else np.frombuffer(cast(bytes, v), dtype="<f4") for v in raw]

    async def answers(self) -> bool:
        """Whether Redis answers a PING now."""
        return await redis_answers(self.redis)

    async def put_many(self, texts: list[str], vectors: np.ndarray) -> None:
        """Store vectors for `texts`."""
        if not texts:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for text, vector in zip(texts, vectors, strict=True):
                    pipe.set(
                        self.keys.embedding(self.model, text),
                        np.asarray(vector, "<f4").tobytes(),
                        ex=self.ttl_s,
                    )
                await pipe.execute()
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc


class IndexGeneration:
    """A counter per alias; bumping it makes every cached answer for that alias unreachable at once."""

    def __init__(self, redis: Redis, keys: KeySpace, alias: str) -> None:
        self.redis, self.key = redis, keys.generation(alias)

    async def current(self) -> int:
        """The generation now."""
        try:
            value = await self.redis.get(self.key)
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc
        return int(value or 0)

    async def answers(self) -> bool:
        """Whether Redis answers a PING now."""
        return await redis_answers(self.redis)

    async def bump(self) -> int:
        """Advance the generation; returns the new value."""
        try:
            return int(await self.redis.incr(self.key))
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc
