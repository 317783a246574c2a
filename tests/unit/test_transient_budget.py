"""TransientBudget: a record is given up only on failures of its own, counted only while the stores answer."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from ragbus.errors import TransientError
from workers.transient_budget import IsolateBatch, TransientBudget, TransientBudgetExhausted


def _records(*offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [ConsumerRecord("t", 0, o, 0, 0, b"k", b"v", None, 1, 1, ()) for o in offsets]


def test_failures_while_a_store_is_down_never_count() -> None:
    budget = TransientBudget(max_attempts=3)
    record = _records(5)
    for _ in range(50):
        budget.failed(record, TransientError("Milvus unreachable"), counted=False)
    assert budget.verdict(record) is None


def test_a_record_failing_alone_while_the_stores_answer_is_given_up_with_its_history() -> None:
    budget = TransientBudget(max_attempts=3)
    record = _records(5)
    budget.failed(record, TransientError("store down"), counted=False)
    for attempt in range(3):
        assert budget.verdict(record) is None
        budget.failed(record, TransientError(f"refused #{attempt}"), counted=True)
    verdict = budget.verdict(record)
    assert isinstance(verdict, TransientBudgetExhausted)
    assert verdict.code == "transient_budget_exhausted"
    assert all(f"refused #{n}" in str(verdict) for n in range(3)) and "(a store was down)" in str(verdict)


def test_a_failing_batch_is_split_before_any_record_is_given_up() -> None:
    budget = TransientBudget(max_attempts=2)
    batch = _records(1, 2, 3)
    for _ in range(2):
        budget.failed(batch, TransientError("boom"), counted=True)
    assert isinstance(budget.verdict(batch), IsolateBatch)
    assert all(budget.verdict([r]) is None for r in batch), "batch failures never dead-letter a record alone"
    budget.forget(batch)
    budget.failed(batch, TransientError("boom"), counted=True)
    assert budget.verdict(batch) is None, "forgotten once done"
