"""What the three stages share: batch consumption, retry with backoff, dead-lettering, commit after success.

A stage is a `StageHandler`: it decodes one record (a PermanentError there means a poison message) and
processes a decoded batch, producing downstream and awaiting delivery. The runner commits the batch's offsets
only after `process` returned and every rejected record reached its dead-letter topic (at-least-once).

Batch time is bounded by work, not by record count: a batch takes on records until they carry
RAGBUS_WORKER_MAX_CHUNKS chunks (always at least one record), and the partitions of the records left over are
rewound to them, so they are polled again and nothing is committed past them. Polls stay frequent whatever the
documents' sizes (no max_poll_interval_ms rebalance loop, aiokafka#848), while batches of short documents are
large enough for the embedding model to run full batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import ConsumerRecord, TopicPartition
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker, KafkaMessage

from ragbus import metrics
from ragbus.errors import InvalidMessage, PermanentError, TransientError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics
from ragbus.kafka_security import faststream_security, kafka_connection
from ragbus.logging_setup import correlated, correlation_of
from ragbus.metrics_server import serve_metrics
from ragbus.pipelines import PipelineContext
from ragbus.settings import Settings
from schemas.dead_letter import DeadLetterHeaders
from schemas.errors import ContractError
from schemas.quarantine import QuarantineRequest
from schemas.topics import Topics, lane_of
from workers.lag_monitor import lag_exporter
from workers.lanes import LaneScheduler, YieldToLive, rewind_to
from workers.quarantine_watch import QuarantineWatch, quarantine_watch
from workers.transient_budget import IsolateBatch, TransientBudget, TransientBudgetExhausted

log = logging.getLogger(__name__)
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Inbound(Generic[T]):
    """A decoded record."""

    record: ConsumerRecord[bytes, bytes]
    value: T


@dataclass(frozen=True)
class Rejected:
    """A record a stage gave up on, and why."""

    record: ConsumerRecord[bytes, bytes]
    error: PermanentError


class StageHandler(Protocol[T]):
    """The logic of one stage."""

    stage: str

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> T:
        """The record's payload; PermanentError or ContractError for a poison message."""
        ...

    def chunks_in(self, value: T) -> int:
        """Chunks this stage embeds or writes for `value`, counted against RAGBUS_WORKER_MAX_CHUNKS (0: none)."""
        ...

    async def process(self, batch: list[Inbound[T]]) -> list[Rejected]:
        """Do the stage's work for the batch; return records to dead-letter; raise TransientError to retry."""
        ...

    async def stores_answer(self) -> bool:
        """Whether every store the stage uses answers a cheap request now (then a failure is the batch's own)."""
        ...


OpenHandler = Callable[[PipelineContext, KafkaEventProducer], AbstractAsyncContextManager[StageHandler[Any]]]
Rewind = Callable[[TopicPartition, int], None]


class StageRunner(Generic[T]):
    """Runs batches of one stage: decode, process with retries, dead-letter the rejects."""

    def __init__(
        self,
        handler: StageHandler[T],
        producer: KafkaEventProducer,
        settings: Settings,
        quarantine: QuarantineWatch | None = None,
    ) -> None:
        self.handler = handler
        self.producer = producer
        self.settings = settings
        self.topics = Topics(settings.kafka.topic_prefix)
        self.budget = TransientBudget(settings.worker.max_transient_attempts)
        self.quarantine = quarantine or QuarantineWatch(handler.stage)
        metrics.register_stage(handler.stage)

    async def run_batch(self, records: list[ConsumerRecord[bytes, bytes]], rewind: Rewind) -> None:
        """Process the batch's records up to the chunk budget and rewind to the rest; returns only when the
        processed records' effects are durable (then the consumer's positions may be committed)."""
        stage = self.handler.stage
        started = time.perf_counter()
        decoded: list[Inbound[T]] = []
        rejected: list[Rejected] = []
        taken, chunks = len(records), 0
        for index, record in enumerate(records):
            if request := self.quarantine.request_for(record):
                rejected.append(Rejected(record, _quarantined(request)))
                continue
            try:
                value = self.handler.decode(record)
            except PermanentError as exc:
                rejected.append(Rejected(record, exc))
                continue
            except ContractError as exc:
                rejected.append(Rejected(record, InvalidMessage.from_contract(exc)))
                continue
            except Exception as exc:  # anything a record makes decode raise is that record's fault
                rejected.append(Rejected(record, InvalidMessage(f"undecodable record: {type(exc).__name__}: {exc}")))
                continue
            cost = self.handler.chunks_in(value)
            if index and chunks + cost > self.settings.worker.max_chunks:
                taken = index
                break
            chunks += cost
            decoded.append(Inbound(record, value))
        if taken < len(records):
            self._leave_for_next_poll(records[taken:], rewind)
        metrics.STAGE_BATCH_SIZE.labels(stage).observe(taken)
        if records:
            lane = lane_of(records[0].topic).value
            metrics.LANE_RECORDS.labels(stage, lane).inc(taken)
            now = time.time()  # a record's timestamp is when the stage before this one (or a publisher) sent it
            for record in records[:taken]:
                metrics.LANE_WAIT_SECONDS.labels(stage, lane).observe(max(0.0, now - record.timestamp / 1000))
        if decoded:
            rejected += await self._process_isolating_poison(decoded)
        if rejected:
            await self.dead_letter(rejected)
        self.budget.forget(records[:taken])
        metrics.STAGE_MESSAGES.labels(stage, "ok").inc(taken - len(rejected))
        metrics.STAGE_MESSAGES.labels(stage, "dead_lettered").inc(len(rejected))
        metrics.STAGE_BATCH_SECONDS.labels(stage).observe(time.perf_counter() - started)

    def _leave_for_next_poll(self, left: list[ConsumerRecord[bytes, bytes]], rewind: Rewind) -> None:
        # Records keep their partition's order within a batch, so what is left of each partition follows
        # everything taken from it: rewinding to its first left record re-polls exactly the rest.
        rewind_to(left, rewind)
        metrics.STAGE_DEFERRED.labels(self.handler.stage).inc(len(left))
        log.debug("%s: chunk budget reached, %d records left for the next poll", self.handler.stage, len(left))

    async def _process_isolating_poison(self, batch: list[Inbound[T]]) -> list[Rejected]:
        # A PermanentError for the batch as a whole (a store refusing one bad row) is narrowed down by
        # processing the records one by one, so one poison record never blocks the others.
        try:
            return await self._process_with_retries(batch)
        except PermanentError as exc:
            if len(batch) == 1:
                return [Rejected(batch[0].record, exc)]
            log.warning("%s: batch refused (%s); isolating the bad record", self.handler.stage, exc)
        rejected: list[Rejected] = []
        for item in batch:
            rejected += await self._process_isolating_poison([item])
        return rejected

    async def _process_with_retries(self, batch: list[Inbound[T]]) -> list[Rejected]:
        # Backpressure: while a store is down we keep retrying this batch and poll nothing new. Past the budget
        # the error propagates, the consumer seeks back to the batch start and polls it again, so the group never
        # exceeds max_poll_interval_ms (no rebalance loop) and nothing is skipped. A failure while every store
        # answers is the batch's own: it counts against RAGBUS_WORKER_MAX_TRANSIENT_ATTEMPTS (TransientBudget).
        deadline = time.monotonic() + self.settings.worker.retry_budget_s
        delay = 0.5
        records = [item.record for item in batch]
        while True:
            if requested := [r for r in records if self.quarantine.request_for(r)]:
                # An operator quarantined a record of this batch while it was being retried.
                request = self.quarantine.request_for(requested[0])
                raise _quarantined(request) if len(batch) == 1 and request else IsolateBatch("quarantine requested")
            try:
                return await self.handler.process(batch)
            except (PermanentError, YieldToLive):
                raise
            except Exception as exc:
                # Transient by type, or a bug: either way retry with backoff rather than drop or spin.
                metrics.STAGE_RETRIES.labels(self.handler.stage).inc()
                if not isinstance(exc, TransientError):
                    log.exception("%s: unexpected error, retrying the batch", self.handler.stage)
                self.budget.failed(records, exc, counted=await self._stores_answer())
                if given_up := self.budget.verdict(records):
                    if isinstance(given_up, TransientBudgetExhausted):
                        metrics.TRANSIENT_GIVEN_UP.labels(self.handler.stage).inc()
                    raise given_up from exc
                if time.monotonic() + delay > deadline:
                    log.warning("%s: still failing after retries, re-polling the batch: %s", self.handler.stage, exc)
                    raise
                log.warning("%s: transient failure, retrying in %.1fs: %s", self.handler.stage, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _stores_answer(self) -> bool:
        try:
            return await asyncio.wait_for(self.handler.stores_answer(), timeout=30)
        except Exception:  # a probe that fails or hangs: a store is down, which never counts against the record
            return False

    async def dead_letter(self, rejected: list[Rejected]) -> None:
        """Send each rejected record, untouched, to the stage's dead-letter topic with the reason in headers."""
        topic = self.topics.dead_letter(self.handler.stage)
        messages = []
        for item in rejected:
            record = item.record
            reason = DeadLetterHeaders(
                stage=self.handler.stage,
                error_code=item.error.code,
                error=str(item.error)[:8000],
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            with correlated(correlation_of(record.headers)):
                log.error(
                    "%s: dead-lettering %s[%d]@%d: %s",
                    self.handler.stage,
                    record.topic,
                    record.partition,
                    record.offset,
                    item.error,
                )
            metrics.DEAD_LETTERED.labels(self.handler.stage, item.error.code).inc()
            if item.error.code == "quarantined":
                metrics.QUARANTINED.labels(self.handler.stage).inc()
            headers = [*list(record.headers or ()), *reason.to_kafka()]
            messages.append(OutboundMessage(topic, record.key, record.value, headers))
        await self.producer.send_all(messages)


def _quarantined(request: QuarantineRequest) -> PermanentError:
    return PermanentError(
        f"quarantined by an operator at {request.requested_at.isoformat(timespec='seconds')}: {request.reason}",
        code="quarantined",
    )


async def _no_decode(_msg: Any) -> None:
    # The runner decodes records itself, so a poison message can never fail inside FastStream's decoder.
    return None


def build_stage_app(stage: str, pipeline: PipelineContext, open_handler: OpenHandler) -> FastStream:
    """The FastStream app of one stage of one pipeline: its consumer group, batches, commit after success."""
    settings = pipeline.settings
    worker = settings.worker
    inputs, group = pipeline.names.input_topics(stage), pipeline.names.group(stage) + worker.group_suffix
    lanes = LaneScheduler(
        stage,
        max_records=worker.max_records,
        live_batches_per_bulk=worker.live_batches_per_bulk,
        bulk_max_records=worker.bulk_max_records,
    )
    broker = KafkaBroker(
        kafka_connection(settings)["bootstrap_servers"],
        security=faststream_security(settings),
        client_id=f"ragbus-{stage}",
        graceful_timeout=6.0,
        logger=log,
        request_timeout_ms=settings.kafka.request_timeout_ms,
    )
    holder: dict[str, StageRunner[Any]] = {}

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        if worker.metrics_port:
            serve_metrics(worker.metrics_port, worker.metrics_host)
        topics = Topics(settings.kafka.topic_prefix)
        await ensure_topics(settings, topics.all(), compacted=topics.compacted())
        await ensure_topics(settings, pipeline.names.own_topics())
        async with (
            KafkaEventProducer(settings) as producer,
            open_handler(pipeline, producer) as handler,
            lag_exporter(settings, stage, inputs, group_id=group),
            quarantine_watch(settings, stage) as quarantine,
        ):
            holder["runner"] = StageRunner(handler, producer, settings, quarantine)
            log.info("%s ready: consuming %s (live first) for %s", stage, " and ".join(inputs), pipeline.collection)
            yield

    @broker.subscriber(
        *inputs,
        group_id=group,
        batch=True,
        max_records=worker.max_records,
        batch_timeout_ms=worker.batch_timeout_ms,
        auto_offset_reset="earliest",
        max_poll_interval_ms=worker.max_poll_interval_ms,
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_no_decode,
    )
    async def on_batch(body: Any, msg: KafkaMessage) -> None:
        records = msg.raw_message
        batch = list(records) if isinstance(records, tuple) else [records]
        await lanes.run(batch, msg.consumer, holder["runner"].run_batch)

    return FastStream(broker, lifespan=lifespan)
