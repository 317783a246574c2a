"""Failover across dependencies behind circuit breakers (query_api.failover): the loop replicas and providers share."""

from __future__ import annotations

import asyncio

import pytest

from query_api.breaker import BreakerState, CircuitBreaker
from query_api.failover import AllFailed, first_answer


class Down(Exception):
    """The dependency failed."""


class Refused(Exception):
    """The dependency answered, refusing the request."""


class Stub:
    """A dependency that answers with its name, or raises what it is told to."""

    def __init__(self, name: str, error: Exception | None = None) -> None:
        self.name, self.error, self.calls = name, error, 0
        self.breaker = CircuitBreaker(f"unit:{name}", failures=1, cooldown_s=60)

    async def call(self) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.name


def run(candidates: list[Stub], told: list[str] | None = None, **options: object) -> tuple[str, Stub]:
    """first_answer over the stubs; each failure it reports is appended to `told`."""
    told = [] if told is None else told

    async def attempt() -> tuple[str, Stub]:
        return await first_answer(
            candidates,
            Stub.call,
            failures=(Down,),
            on_failure=lambda stub, exc: told.append(f"{stub.name}: {exc}"),
            **options,  # type: ignore[arg-type]
        )

    return asyncio.run(attempt())


def half_open(stub: Stub) -> Stub:
    """The stub with its breaker open and the cool-down over: the next call is the one trial."""
    stub.breaker.record_failure()
    stub.breaker.cooldown_s = 0
    return stub


def test_a_failing_dependency_is_passed_over_and_its_breaker_opens() -> None:
    first, second, third = Stub("a", Down("timeout")), Stub("b"), Stub("c")
    told: list[str] = []
    answer, winner = run([first, second, third], told)
    assert (answer, winner) == ("b", second)
    assert told == ["a: timeout"]
    assert first.breaker.state is BreakerState.OPEN and second.breaker.state is BreakerState.CLOSED
    assert third.calls == 0

    # While its breaker is open, the failed one is not called at all.
    answer, _ = run([first, second])
    assert answer == "b" and first.calls == 1


def test_when_every_dependency_fails_each_reason_is_given() -> None:
    skipped, failing = Stub("a"), Stub("b", Down("connection refused"))
    skipped.breaker.record_failure()  # open
    with pytest.raises(AllFailed) as raised:
        run([skipped, failing])
    assert raised.value.failures == ["a: breaker open", "b: Down: connection refused"]
    assert skipped.calls == 0


def test_a_refusal_propagates_and_counts_as_the_dependency_answering() -> None:
    refusing, spare = Stub("a", Refused("bad filter")), Stub("b")
    with pytest.raises(Refused):
        run([refusing, spare], refusals=(Refused,))
    assert refusing.breaker.state is BreakerState.CLOSED and spare.calls == 0


def test_an_unexpected_error_propagates_without_touching_the_breaker() -> None:
    buggy, spare = half_open(Stub("a", KeyError("bug"))), Stub("b")
    with pytest.raises(KeyError):
        run([buggy, spare])
    assert spare.calls == 0
    assert buggy.breaker.state is BreakerState.HALF_OPEN, "neither closed (a success) nor open again (a failure)"


def test_a_result_still_running_leaves_the_outcome_to_its_consumer() -> None:
    answer, winner = run([half_open(Stub("a"))], close_on_return=False)
    assert answer == "a"
    assert winner.breaker.state is BreakerState.HALF_OPEN, "not closed before the stream's outcome is known"
    winner.breaker.record_success()
    assert winner.breaker.state is BreakerState.CLOSED
