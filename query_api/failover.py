"""Failover: try dependencies in turn, each behind its circuit breaker, until one answers.

Read replicas (searches, alias lookups) and LLM providers (whole and streamed answers) use this one loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from query_api.breaker import CircuitBreaker


class Guarded(Protocol):
    """A dependency with a name (for messages) and its circuit breaker."""

    @property
    def name(self) -> str:
        """Who it is, in failure messages and logs."""
        ...

    @property
    def breaker(self) -> CircuitBreaker:
        """Decides whether it may be called now, and hears how each call went."""
        ...


G = TypeVar("G", bound=Guarded)
T = TypeVar("T")


class AllFailed(Exception):
    """No candidate answered; `failures` says why, one line per candidate ("NAME: breaker open" when skipped).

    Not a RagbusError: each caller turns it into its own boundary's error (SearchUnavailable, ProvidersFailed).
    """

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures) or "no candidates")
        self.failures = failures


async def first_answer(
    candidates: Iterable[G],
    call: Callable[[G], Awaitable[T]],
    *,
    failures: tuple[type[Exception], ...],
    on_failure: Callable[[G, Exception], None],
    refusals: tuple[type[Exception], ...] = (),
    close_on_return: bool = True,
) -> tuple[T, G]:
    """(result, candidate) of the first candidate, in order, whose breaker allows a call and whose call succeeds.

    `failures`: the errors that mean this candidate is failing: its breaker hears a failure, `on_failure` is told
    (metrics, logs) and the next candidate is tried. `refusals`: the errors that mean the candidate answered but
    refused the request itself: its breaker hears a success and the error propagates (another candidate would
    refuse too). Any other error propagates untouched. `close_on_return=False` when the result is still running
    (a stream): the breaker then hears the outcome from whoever consumes it. AllFailed when none answered.
    """
    failed: list[str] = []
    for candidate in candidates:
        if not candidate.breaker.allow():
            failed.append(f"{candidate.name}: breaker open")
            continue
        try:
            result = await call(candidate)
        except refusals:
            candidate.breaker.record_success()
            raise
        except failures as exc:
            candidate.breaker.record_failure()
            on_failure(candidate, exc)
            failed.append(f"{candidate.name}: {type(exc).__name__}: {exc}"[:300])
            continue
        if close_on_return:
            candidate.breaker.record_success()
        return result, candidate
    raise AllFailed(failed)
