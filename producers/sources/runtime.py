"""What every long-running source shares: /metrics and health, SIGTERM, and publishing with retries.

A source acknowledges its own input (a replication slot's flush LSN, a manifest, consumer offsets) only after
`SourceRun.publish` returned, i.e. after the broker confirmed every event: a SIGKILL at any point loses nothing,
and what it repeats is harmless because versions come from the source.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from producers.sources.heartbeat import Heartbeat
from ragbus import metrics
from ragbus.document_publisher import DocumentPublisher
from ragbus.errors import PermanentError, TransientError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics
from ragbus.metrics_server import serve_metrics
from ragbus.settings import Settings
from schemas.dead_letter import DeadLetterHeaders
from schemas.documents import DocumentEvent
from schemas.topics import Lane, Topics

log = logging.getLogger(__name__)


class SourceRun:
    """One running source: its document publisher, a producer for its other records (dead letters, heartbeats),
    its stop signal and its metrics."""

    def __init__(
        self, name: str, settings: Settings, publisher: DocumentPublisher, producer: KafkaEventProducer
    ) -> None:
        self.name = name
        self.settings = settings
        self.publisher = publisher
        self.producer = producer
        self.stopping = asyncio.Event()
        self.events = 0
        self.last_change: float | None = None

    async def publish(
        self, events: Sequence[DocumentEvent], changed_at: float | None = None, *, lane: Lane | None = None
    ) -> None:
        """Publish `events` (a snapshot in the bulk lane; changes by their number, DocumentPublisher.lane_for),
        retrying a broker that is down (backpressure) until the retry budget is spent."""
        if not events:
            return
        deadline = time.monotonic() + self.settings.source.retry_budget_s
        delay = 0.5
        while True:
            try:
                await self.publisher.publish(events, lane=lane)
                break
            except TransientError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s: publish not confirmed, retrying in %.1fs: %s", self.name, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self.events += len(events)
        for event in events:
            metrics.SOURCE_EVENTS.labels(self.name, event.op.value).inc()
        if changed_at is not None:
            metrics.SOURCE_LAG_SECONDS.labels(self.name).set(max(0.0, time.time() - changed_at))

    async def dead_letter(
        self, key: bytes | None, value: bytes | None, error: PermanentError, *, origin: str, partition: int, offset: int
    ) -> None:
        """Send what the source could not turn into a document to its dead-letter topic, with the reason."""
        stage = f"source-{self.name}"
        reason = DeadLetterHeaders(
            stage=stage,
            error_code=error.code,
            error=str(error)[:2000],
            topic=origin,
            partition=partition,
            offset=offset,
        )
        log.error("%s: dead-lettering %s[%d]@%d: %s", self.name, origin, partition, offset, error)
        topic = Topics(self.settings.kafka.topic_prefix).dead_letter(stage)
        await ensure_topics(self.settings, [topic])
        await self.producer.send_all([OutboundMessage(topic, key, value, reason.to_kafka())])
        metrics.DEAD_LETTERED.labels(stage, error.code).inc()

    def saw_change(self, at: float | None = None) -> None:
        """Record when the source last saw a change."""
        self.last_change = at or time.time()
        metrics.SOURCE_LAST_CHANGE.labels(self.name).set(self.last_change)

    async def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when a stop was requested meanwhile."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True


@asynccontextmanager
async def running_source(name: str, settings: Settings, follows: str) -> AsyncIterator[SourceRun]:
    """Serve /metrics (any path answers 200: the health check), stop on SIGTERM/SIGINT, open the publisher, and
    announce the source on the sources topic (`ragbus status` lists it) until it stops."""
    metrics.register_source(name)
    if settings.source.metrics_port:
        serve_metrics(settings.source.metrics_port, settings.source.metrics_host)
    loop = asyncio.get_running_loop()
    async with DocumentPublisher(settings) as publisher, KafkaEventProducer(settings) as producer:
        run = SourceRun(name, settings, publisher, producer)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, run.stopping.set)
        heartbeat = Heartbeat(run, follows)
        await heartbeat.start()
        log.info("source %s running: %s", name, follows)
        try:
            yield run
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await heartbeat.stop()
            log.info("source %s stopped", name)
