"""TransientBudget: how often each record failed while the stage's stores answered, and when to give it up.

A transient failure is retried (backpressure, nothing lost) as long as a store is down. But a failure that keeps
recurring for one record while every store the stage uses answers a probe is that record's own: past
RAGBUS_WORKER_MAX_TRANSIENT_ATTEMPTS such failures it is dead-lettered with its history, so it never stalls its
partition. Failures of a whole batch only lead to processing its records one by one; a record is given up only on
failures of its own, so the good records of a batch are never dead-lettered with the bad one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from ragbus.errors import PermanentError

RecordKey = tuple[str, int, int]  # topic, partition, offset
_TRACKED_MAX = 10_000  # records with a history at once (a stage handles a few batches at a time)
_HISTORY_MAX = 20


class TransientBudgetExhausted(PermanentError):
    """A record failed transiently too often while the stores answered; its reason carries every failure."""

    code = "transient_budget_exhausted"


class IsolateBatch(PermanentError):
    """A batch kept failing while the stores answered: its records are processed one by one."""

    code = "isolate_batch"


@dataclass
class _Strikes:
    alone: int = 0  # counted failures of the record processed by itself
    in_batch: int = 0  # counted failures of batches it was part of
    history: list[str] = field(default_factory=list)


def record_key(record: ConsumerRecord[bytes, bytes]) -> RecordKey:
    """Where a record is, which identifies it."""
    return (record.topic, record.partition, record.offset)


class TransientBudget:
    """Per-record failure counts and histories, bounded in memory."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts
        self._strikes: OrderedDict[RecordKey, _Strikes] = OrderedDict()

    def failed(self, records: list[ConsumerRecord[bytes, bytes]], error: BaseException, *, counted: bool) -> None:
        """Note a failed attempt at `records`; `counted`: the stores answered, so it counts against the budget."""
        when = datetime.now(UTC).isoformat(timespec="seconds")
        note = f"{when} {type(error).__name__}: {str(error)[:200]}" + ("" if counted else " (a store was down)")
        for record in records:
            strikes = self._strikes.setdefault(record_key(record), _Strikes())
            self._strikes.move_to_end(record_key(record))
            if counted:
                if len(records) == 1:
                    strikes.alone += 1
                else:
                    strikes.in_batch += 1
            strikes.history = [*strikes.history, note][-_HISTORY_MAX:]
        while len(self._strikes) > _TRACKED_MAX:
            self._strikes.popitem(last=False)

    def verdict(self, records: list[ConsumerRecord[bytes, bytes]]) -> PermanentError | None:
        """The error to give up with (or to isolate the batch's records with), or None to keep retrying."""
        strikes = [self._strikes.get(record_key(r), _Strikes()) for r in records]
        if len(records) == 1 and strikes[0].alone >= self.max_attempts:
            history = " | ".join(strikes[0].history)
            return TransientBudgetExhausted(
                f"failed {strikes[0].alone} times while every store answered "
                f"(RAGBUS_WORKER_MAX_TRANSIENT_ATTEMPTS={self.max_attempts}); history: {history}"
            )
        if len(records) > 1 and max(s.in_batch for s in strikes) >= self.max_attempts:
            return IsolateBatch(f"a batch of {len(records)} kept failing while every store answered")
        return None

    def forget(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """The records are done (processed or dead-lettered)."""
        for record in records:
            self._strikes.pop(record_key(record), None)
