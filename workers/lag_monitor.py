"""Consumer lag per partition as a Prometheus gauge, read periodically by every worker for its own group.

Lag is what KEDA scales the workers on and what the ConsumerLagHigh alert watches; exporting it from the
worker itself means no separate exporter has to be deployed next to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka.errors import KafkaError

from ragbus import metrics
from ragbus.background import stop_task
from ragbus.errors import RagbusError
from ragbus.kafka_clients import consumer_lag
from ragbus.settings import Settings

log = logging.getLogger(__name__)


async def export_lag_once(settings: Settings, stage: str, topic: str, group: str) -> dict[int, int]:
    """Read the group's lag on `topic` and set the gauge for every partition."""
    lag = await consumer_lag(settings, group, topic)
    for partition, behind in lag.items():
        metrics.CONSUMER_LAG.labels(stage, group, topic, str(partition)).set(behind)
    return lag


async def _export_forever(settings: Settings, stage: str, topics: list[str], group: str, interval_s: float) -> None:
    while True:
        try:
            for topic in topics:  # both lanes' input topics: the `topic` label tells the lanes apart
                await export_lag_once(settings, stage, topic, group)
        except (RagbusError, KafkaError, OSError) as exc:
            # Kafka being away is visible elsewhere (the worker backs off); the gauge keeps its last value.
            metrics.CONSUMER_LAG_ERRORS.labels(stage).inc()
            log.warning("%s: cannot read consumer lag: %s", stage, exc)
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def lag_exporter(settings: Settings, stage: str, topics: list[str], *, group_id: str) -> AsyncIterator[None]:
    """While open, a background task refreshes the lag gauge every RAGBUS_WORKER_LAG_INTERVAL_S seconds."""
    interval_s = settings.worker.lag_interval_s
    if not interval_s:
        yield
        return
    task = asyncio.create_task(_export_forever(settings, stage, topics, group_id, interval_s), name=f"lag-{stage}")
    try:
        yield
    finally:
        await stop_task(task)
