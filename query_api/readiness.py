"""Readiness of each dependency, checked for real with short timeouts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from ragbus.kafka_clients import start_client
from ragbus.kafka_security import kafka_connection
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings

log = logging.getLogger(__name__)
CHECK_TIMEOUT_S = 3.0


@dataclass
class Readiness:
    """Per-dependency readiness: "ok", "failed" (the reason is logged) or, for the model, "loading"."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return all(v == "ok" for v in self.checks.values())


async def _kafka(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(**kafka_connection(settings), request_timeout_ms=2000)
    try:
        await start_client(settings, admin)
        await admin.list_topics()
    finally:
        await admin.close()


async def _check(name: str, coro: object, checks: dict[str, str]) -> None:
    try:
        await asyncio.wait_for(coro, CHECK_TIMEOUT_S)  # type: ignore[arg-type]
        checks[name] = "ok"
    except Exception as exc:  # any failure means not ready; the reason goes to the log, not the caller
        # The probe answers anyone: it names the dependency, never its address or the exception text.
        checks[name] = "failed"
        log.warning("readiness: %s failed: %s: %s", name, type(exc).__name__, str(exc)[:300])


async def check_readiness(settings: Settings, store: MilvusChunkStore, redis: Redis, model_loaded: bool) -> Readiness:
    """Kafka, Milvus, Redis and the model, checked concurrently."""
    checks: dict[str, str] = {"model": "ok" if model_loaded else "loading"}
    await asyncio.gather(
        _check("kafka", _kafka(settings), checks),
        _check("milvus", asyncio.to_thread(store.alias_target), checks),
        _check("redis", redis.ping(), checks),
    )
    return Readiness(dict(sorted(checks.items())))
