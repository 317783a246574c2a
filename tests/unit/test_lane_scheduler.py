"""LaneScheduler on a stand-in consumer: short bulk batches, live first, giving way between steps, the bulk's turn."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from workers import lanes as lanes_module
from workers.lanes import LaneScheduler, in_bulk_batch, yield_to_live

LIVE, BULK = "t.documents.v1", "t.documents.bulk.v1"


def record(topic: str, offset: int, partition: int = 0) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


@dataclass
class StandInConsumer:
    """What the scheduler asks of an AIOKafkaConsumer: seeks, positions, highwaters, fetched records."""

    positions: dict[TopicPartition, int] = field(default_factory=dict)
    highwaters: dict[TopicPartition, int] = field(default_factory=dict)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(LIVE, 0), TopicPartition(BULK, 0)}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions.get(tp, 0)

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict[object, list[object]]:
        return {}


def scheduler() -> LaneScheduler:
    return LaneScheduler("embedder", max_records=128, live_batches_per_bulk=2, bulk_max_records=32)


def test_a_bulk_batch_takes_at_most_bulk_max_records_and_puts_the_rest_back() -> None:
    consumer, seen = StandInConsumer(), []

    async def process(records: list[ConsumerRecord[bytes, bytes]], _rewind: object) -> None:
        seen.append(([r.offset for r in records], in_bulk_batch()))

    asyncio.run(scheduler().run([record(BULK, n) for n in range(100)], consumer, process))  # type: ignore[arg-type]
    assert seen == [(list(range(32)), True)]
    assert consumer.seeks == [(TopicPartition(BULK, 0), 32)]


def test_live_records_go_first_and_the_bulk_gets_its_turn_after_a_run_of_live_batches() -> None:
    consumer, turns = StandInConsumer(), []
    lanes = scheduler()

    async def process(records: list[ConsumerRecord[bytes, bytes]], _rewind: object) -> None:
        turns.append({r.topic for r in records})

    async def polls() -> None:
        for n in range(3):
            await lanes.run([record(BULK, 0), record(LIVE, n)], consumer, process)  # type: ignore[arg-type]

    asyncio.run(polls())
    assert turns == [{LIVE}, {LIVE}, {BULK}]  # two live batches put the bulk back, then the bulk's turn


def test_a_bulk_batch_gives_way_between_steps_when_live_records_wait() -> None:
    consumer = StandInConsumer(highwaters={TopicPartition(LIVE, 0): 5})  # live records wait at the consumer
    steps: list[int] = []

    async def process(records: list[ConsumerRecord[bytes, bytes]], _rewind: object) -> None:
        for step in range(3):
            steps.append(step)
            await yield_to_live()

    asyncio.run(scheduler().run([record(BULK, n) for n in range(4)], consumer, process))  # type: ignore[arg-type]
    assert steps == [0], "one step is done, then the batch gives way"
    assert consumer.seeks == [(TopicPartition(BULK, 0), 0)], "the whole batch is polled again"


def test_the_bulk_turn_after_a_run_of_live_batches_runs_turn_s_before_it_gives_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lanes_module, "TURN_S", 0.2)
    consumer, lanes = StandInConsumer(), scheduler()
    steps: list[float] = []

    async def process(records: list[ConsumerRecord[bytes, bytes]], _rewind: object) -> None:
        if records[0].topic == BULK:
            started = time.monotonic()
            consumer.highwaters[TopicPartition(LIVE, 0)] = 99  # live records keep arriving
            for _ in range(100):
                await asyncio.sleep(0.02)
                steps.append(time.monotonic() - started)
                await yield_to_live()

    async def polls() -> None:
        for n in range(3):
            await lanes.run([record(BULK, 0), record(LIVE, n)], consumer, process)  # type: ignore[arg-type]

    asyncio.run(polls())
    assert 0.2 <= steps[-1] < 0.5, steps[-1]  # the turn ran its 0.2 s, then gave way at the next step
    assert len(steps) < 100


def test_a_live_batch_never_gives_way() -> None:
    consumer = StandInConsumer(highwaters={TopicPartition(LIVE, 0): 5})
    steps: list[tuple[int, bool]] = []

    async def process(records: list[ConsumerRecord[bytes, bytes]], _rewind: object) -> None:
        for step in range(3):
            steps.append((step, in_bulk_batch()))
            await yield_to_live()

    asyncio.run(scheduler().run([record(LIVE, n) for n in range(4)], consumer, process))  # type: ignore[arg-type]
    assert steps == [(0, False), (1, False), (2, False)]
    assert consumer.seeks == []
