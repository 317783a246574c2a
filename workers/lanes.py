"""Live first: which of a stage's polled records it processes now.

A stage consumes both lanes' input topics in one consumer group (one consumer). Each poll it processes one lane's
records: the live ones if it has any (those polled, else those its consumer has already fetched: a look that does
not wait), and puts the bulk ones back (their partitions are rewound, so they are polled again and nothing is
committed past them). After `live_batches_per_bulk` live batches in a row that put bulk records back, one bulk batch
runs: bulk is never starved. Only one batch runs per poll, so the time between polls is bounded by
RAGBUS_WORKER_MAX_CHUNKS as it was (max_poll_interval_ms, aiokafka#848).

A bulk batch is short: at most `bulk_max_records` records (RAGBUS_WORKER_BULK_MAX_RECORDS), the rest put back, so
a live record that arrives while one runs waits little. It can also give way in the middle: a stage whose batches
are long (the embedder: one model call after another) calls `yield_to_live()` between steps, which raises
`YieldToLive` when live records wait (the consumer has fetched past its position on a live partition). The bulk's
own turn gives way only after it has run TURN_S (1 s), so the bulk moves on under any live load. The batch is then
put back whole, and what it already did is kept where that is free (the embedder's vectors are in the embedding
cache), so it resumes there. The embedder also gives way while a bulk model call runs: the call goes on, on a thread
of its own, beside the live batch.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from ragbus import metrics
from schemas.topics import Lane, lane_of

log = logging.getLogger(__name__)
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Rewind = Callable[[TopicPartition, int], None]
Process = Callable[[list[Record], Rewind], Awaitable[None]]
# The least a bulk batch runs when it is the bulk's turn after a run of live batches: the bulk moves on by at least
# this much work per turn under any live load, and a live record waits at most about this long (plus one step).
TURN_S = 1.0
_live_waiting: contextvars.ContextVar[Callable[[], Awaitable[bool]] | None] = contextvars.ContextVar(
    "live_waiting", default=None
)


class YieldToLive(Exception):
    """A bulk batch stops between two steps because live records wait; it is polled again whole."""


async def yield_to_live() -> None:
    """Raise YieldToLive inside a bulk batch while live records wait (elsewhere: nothing); call it between steps."""
    check = _live_waiting.get()
    if check is not None and await check():
        raise YieldToLive


@contextmanager
def batch_of_lane(live_waiting: Callable[[], Awaitable[bool]] | None) -> Iterator[None]:
    """Run a batch: a bulk one, which gives way when `live_waiting()` says live records wait, or (None) a live one."""
    token = _live_waiting.set(live_waiting)
    try:
        yield
    finally:
        _live_waiting.reset(token)


def in_bulk_batch() -> bool:
    """Whether the running batch is a bulk one (a stage may then cut its work into shorter steps)."""
    return _live_waiting.get() is not None


class _GiveWay:
    """The live-waiting check of one bulk batch: whether live records wait, once it has run `after_s` seconds."""

    def __init__(self, consumer: AIOKafkaConsumer, after_s: float) -> None:
        self.consumer, self.until = consumer, time.monotonic() + after_s

    async def __call__(self) -> bool:
        return time.monotonic() >= self.until and await live_waiting(self.consumer)


async def live_waiting(consumer: AIOKafkaConsumer) -> bool:
    """Whether the consumer has seen live records past its position (from fetches it made anyway: no round trip)."""
    for tp in consumer.assignment():
        if lane_of(tp.topic) is Lane.LIVE:
            highwater = consumer.highwater(tp)
            if highwater is not None and highwater > await consumer.position(tp):
                return True
    return False


def rewind_to(records: Sequence[Record], rewind: Rewind) -> None:
    """Rewind each partition of `records` to its first one, so they are all polled again."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        first[partition] = min(record.offset, first.get(partition, record.offset))
    for partition, offset in first.items():
        rewind(partition, offset)


class LaneScheduler:
    """Chooses the lane of each batch of one stage: live first, one bulk batch after a run of live ones."""

    def __init__(self, stage: str, *, max_records: int, live_batches_per_bulk: int, bulk_max_records: int) -> None:
        self.stage, self.max_records, self.live_batches_per_bulk = stage, max_records, live_batches_per_bulk
        self.bulk_max_records = bulk_max_records
        self.live_streak = 0  # live batches in a row that put bulk records back

    async def run(self, records: list[Record], consumer: AIOKafkaConsumer, process: Process) -> None:
        """Process one lane's share of `records` (or of what the consumer fetched) and put the rest back."""
        live = [r for r in records if lane_of(r.topic) is Lane.LIVE]
        bulk = [r for r in records if lane_of(r.topic) is Lane.BULK]
        looked: list[Record] = []
        turn = bool(bulk) and self.live_streak >= self.live_batches_per_bulk
        if turn:
            chosen, put_back = bulk, live  # bulk's turn: live waits this one batch (at least TURN_S of it)
        else:
            if bulk and not live:
                live = looked = await self._fetched_live(consumer)
            chosen, put_back = (live, bulk) if live else (bulk, [])
        bulk_turn = chosen is bulk
        if bulk_turn and len(chosen) > self.bulk_max_records:
            # Records keep their partition's order in a poll: what is left of each partition follows what is taken.
            chosen, put_back = chosen[: self.bulk_max_records], put_back + chosen[self.bulk_max_records :]
        if put_back:
            rewind_to(put_back, consumer.seek)
        if bulk_turn:
            self.live_streak = 0
        elif put_back:  # a live batch puts back only bulk records
            self.live_streak += 1
            metrics.LANE_YIELDED.labels(self.stage).inc()
            log.debug("%s: %d bulk records put back for %d live ones", self.stage, len(put_back), len(chosen))
        try:
            with batch_of_lane(_GiveWay(consumer, TURN_S if turn else 0.0) if bulk_turn else None):
                await process(chosen, consumer.seek)
        except YieldToLive:
            # Nothing of it is committed: all of it is polled again. What it forwarded already (only where poison
            # isolation sent records one by one) is forwarded again, an equal version the indexer re-applies.
            rewind_to(chosen, consumer.seek)
            metrics.LANE_YIELDED.labels(self.stage).inc()
            log.debug("%s: a bulk batch of %d records gave way to live records", self.stage, len(chosen))
        except BaseException:
            # Records taken by the look are not in the batch the subscriber rewinds on failure: rewind them here.
            if looked:
                rewind_to(looked, consumer.seek)
            raise

    async def _fetched_live(self, consumer: AIOKafkaConsumer) -> list[Record]:
        # Only what the consumer already holds (timeout 0): looking costs no round trip and never waits.
        live = [tp for tp in consumer.assignment() if lane_of(tp.topic) is Lane.LIVE]
        if not live:
            return []
        fetched = await consumer.getmany(*live, timeout_ms=0, max_records=self.max_records)
        return [record for part in fetched.values() for record in part]
