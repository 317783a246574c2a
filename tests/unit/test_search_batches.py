"""SearchBatcher: concurrent questions of one shape share a call; nothing waits for a batch to fill."""

from __future__ import annotations

import asyncio

import pytest

from query_api.batching import Batcher
from query_api.search_batches import SearchBatch, SearchBatcher, SearchShape
from ragbus.milvus.filters import MetadataWhere
from ragbus.milvus.rows import ChunkHit


def shape(**changes: object) -> SearchShape:
    base = {"tenant": "default", "top_k": 5, "where": None, "collection": "c1", "hybrid": True, "rrf_k": 60}
    return SearchShape(**(base | changes))  # type: ignore[arg-type]


def hit(label: str) -> ChunkHit:
    return ChunkHit(label, label, 1, "default", label, label, 0, "test", 1.0)


class FakeMilvus:
    """Answers each question with a hit named after its vector's first value; a gate holds calls in flight."""

    def __init__(self) -> None:
        self.batches: list[SearchBatch] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next = False

    async def run(self, batch: SearchBatch) -> list[list[ChunkHit]]:
        self.batches.append(batch)
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise TimeoutError("replica timed out")
        texts = batch.texts or [None] * len(batch.vectors)
        return [[hit(f"{vector[0]:g}:{text}")] for vector, text in zip(batch.vectors, texts, strict=True)]


async def test_a_lone_question_is_sent_at_once_alone() -> None:
    milvus = FakeMilvus()
    batcher = SearchBatcher(milvus.run, max_batch=16)
    hits = await asyncio.wait_for(batcher.search(shape(), [1.0], "koalas", {}), timeout=1)
    assert [h.chunk_id for h in hits] == ["1:koalas"]
    assert [len(b.vectors) for b in milvus.batches] == [1]


async def test_questions_arriving_during_a_call_go_together_in_the_next() -> None:
    milvus = FakeMilvus()
    batcher = SearchBatcher(milvus.run, max_batch=4)
    milvus.gate.clear()
    first = asyncio.create_task(batcher.search(shape(), [0.0], "q0", {}))
    await asyncio.sleep(0.01)  # the first call is in flight, held at the gate
    later = [asyncio.create_task(batcher.search(shape(), [float(i)], f"q{i}", {})) for i in range(1, 7)]
    await asyncio.sleep(0.01)
    milvus.gate.set()
    answers = await asyncio.wait_for(asyncio.gather(first, *later), timeout=2)
    # Each question gets its own hits, in its own order, whatever batch it rode in.
    assert [hits[0].chunk_id for hits in answers] == [f"{i}:q{i}" for i in range(7)]
    assert [len(b.vectors) for b in milvus.batches] == [1, 4, 2]  # at most max_batch a call
    assert [b.texts for b in milvus.batches][1] == ["q1", "q2", "q3", "q4"]


async def test_shapes_never_share_a_call() -> None:
    milvus = FakeMilvus()
    batcher = SearchBatcher(milvus.run, max_batch=16)
    milvus.gate.clear()
    blocker = asyncio.create_task(batcher.search(shape(), [0.0], "q", {}))
    await asyncio.sleep(0.01)
    # 1 == True in Python, but a filter on 1 and one on true match different documents.
    one, true = MetadataWhere.of({"n": 1}), MetadataWhere.of({"n": True})
    others = [
        batcher.search(shape(where=one), [1.0], "q", {}),
        batcher.search(shape(where=true), [2.0], "q", {}),
        batcher.search(shape(tenant="other"), [3.0], "q", {}),
        batcher.search(shape(top_k=9), [4.0], "q", {}),
        batcher.search(shape(hybrid=False), [5.0], None, {}),
        batcher.search(shape(collection="c2"), [6.0], "q", {}),
    ]
    tasks = [asyncio.create_task(each) for each in others]
    await asyncio.sleep(0.01)
    milvus.gate.set()
    await asyncio.wait_for(asyncio.gather(blocker, *tasks), timeout=2)
    assert sorted(len(b.vectors) for b in milvus.batches) == [1] * 7
    assert next(b for b in milvus.batches if not b.shape.hybrid).texts is None


async def test_a_batch_reads_each_replica_at_its_latest_mark() -> None:
    milvus = FakeMilvus()
    batcher = SearchBatcher(milvus.run, max_batch=16)
    milvus.gate.clear()
    blocker = asyncio.create_task(batcher.search(shape(), [0.0], "q", {}))
    await asyncio.sleep(0.01)
    tasks = [
        asyncio.create_task(batcher.search(shape(), [1.0], "q", {"a": 5, "b": 9})),
        asyncio.create_task(batcher.search(shape(), [2.0], "q", {"a": 7, "b": 3})),
        # No mark for b (a read-your-writes question, or Redis down): b at the configured level, another call.
        asyncio.create_task(batcher.search(shape(), [3.0], "q", {"a": 8})),
    ]
    await asyncio.sleep(0.01)
    milvus.gate.set()
    await asyncio.wait_for(asyncio.gather(blocker, *tasks), timeout=2)
    assert [b.written for b in milvus.batches[1:]] == [{"a": 7, "b": 9}, {"a": 8}]


async def test_a_failed_call_fails_its_questions_only() -> None:
    milvus = FakeMilvus()
    batcher = SearchBatcher(milvus.run, max_batch=16)
    milvus.gate.clear()
    milvus.fail_next = True
    failing = asyncio.create_task(batcher.search(shape(), [0.0], "q", {}))
    await asyncio.sleep(0.01)
    next_call = asyncio.create_task(batcher.search(shape(), [1.0], "q", {}))
    await asyncio.sleep(0.01)
    milvus.gate.set()
    with pytest.raises(TimeoutError, match="replica timed out"):
        await asyncio.wait_for(failing, timeout=2)
    assert (await asyncio.wait_for(next_call, timeout=2))[0].chunk_id == "1:q"


async def test_a_question_given_up_is_dropped_from_its_batch() -> None:
    milvus = FakeMilvus()
    batcher = SearchBatcher(milvus.run, max_batch=16)
    milvus.gate.clear()
    blocker = asyncio.create_task(batcher.search(shape(), [0.0], "q", {}))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(batcher.search(shape(), [1.0], "q", {}))
    kept = asyncio.create_task(batcher.search(shape(), [2.0], "q", {}))
    await asyncio.sleep(0.01)
    gone.cancel()
    milvus.gate.set()
    assert (await asyncio.wait_for(kept, timeout=2))[0].chunk_id == "2:q"
    await blocker
    assert [b.vectors for b in milvus.batches] == [[[0.0]], [[2.0]]]


async def test_closing_cancels_the_questions_still_waiting() -> None:
    milvus = FakeMilvus()
    batcher = SearchBatcher(milvus.run, max_batch=16)
    milvus.gate.clear()
    waiting = asyncio.create_task(batcher.search(shape(), [0.0], "q", {}))
    await asyncio.sleep(0.01)
    await batcher.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiting


def test_a_batch_holds_at_least_one_question() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SearchBatcher(FakeMilvus().run, max_batch=0)


async def test_without_batches_every_question_is_sent_at_once() -> None:
    # RAGBUS_API_BATCH_MAX=1: no call waits for another (a Strong search waits for the engine's tick, and one at a
    # time would queue every question behind the others' waits).
    milvus = FakeMilvus()
    batcher = SearchBatcher(milvus.run, max_batch=1)
    milvus.gate.clear()
    tasks = [asyncio.create_task(batcher.search(shape(), [float(i)], "q", {})) for i in range(3)]
    await asyncio.sleep(0.01)
    assert len(milvus.batches) == 3  # all three in flight together
    milvus.gate.set()
    answers = await asyncio.wait_for(asyncio.gather(*tasks), timeout=2)
    assert [hits[0].chunk_id for hits in answers] == ["0:q", "1:q", "2:q"]


async def test_a_call_with_a_result_missing_fails_every_question_of_it() -> None:
    async def short(_key: str, items: list[int]) -> list[int]:
        return items[:-1]

    batcher = Batcher[str, int, int](short, max_batch=16, name="short")
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        await asyncio.wait_for(batcher.submit("k", 1), timeout=1)


async def test_nothing_is_taken_once_closed() -> None:
    async def echo(_key: str, items: list[int]) -> list[int]:
        return items

    batcher = Batcher[str, int, int](echo, max_batch=16, name="echo")
    assert await batcher.submit("k", 7) == 7
    await batcher.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.submit("k", 8)
