"""Circuit breaker states, citation markers, SSE framing, which LLM errors are retried, in-process single flight."""

from __future__ import annotations

import asyncio

import httpx2  # the HTTP client openai (>= 3) is built on
import openai
import pytest
from redis.asyncio import Redis

from query_api.breaker import BreakerState, CircuitBreaker
from query_api.generation import keep_valid_citations
from query_api.providers import is_transient
from query_api.single_flight import SingleFlight
from query_api.streaming import delta_event, word_deltas


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_n_failures_and_lets_one_trial_through_after_the_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker("unit", failures=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    assert breaker.retry_after_s() == 10
    clock.now += 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow(), "one trial"
    assert not breaker.allow(), "only one trial while it is in flight"
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN, "a failed trial opens at once"
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow() and breaker.allow()


def test_a_trial_that_never_reports_back_stops_blocking_after_a_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker("unit3", failures=1, cooldown_s=5, clock=clock)
    breaker.record_failure()
    clock.now += 5
    assert breaker.allow()  # the trial's caller is then cancelled: no success, no failure
    clock.now += 4
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker("unit2", failures=2, cooldown_s=1, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_only_markers_that_name_a_source_are_kept() -> None:
    assert keep_valid_citations("A [1], B [2] and C [3].", 2) == "A [1], B [2] and C."
    assert keep_valid_citations("None [0] here.", 1) == "None here."


def test_word_deltas_rebuild_the_answer_exactly() -> None:
    text = "Koalas eat\n\neucalyptus  leaves [1]. "
    assert "".join(word_deltas(text)) == text
    assert len(word_deltas(text)) == 5
    assert delta_event("a b").encode() == b'event: delta\ndata: {"text":"a b"}\n\n'


def _status_error(status: int) -> openai.APIStatusError:
    request = httpx2.Request("POST", "http://llm/v1/chat/completions")
    return openai.APIStatusError("failure", response=httpx2.Response(status, request=request), body=None)


@pytest.mark.parametrize(("status", "retried"), [(429, True), (500, True), (503, True), (400, False), (401, False)])
def test_only_transient_llm_errors_are_retried(status: int, retried: bool) -> None:
    assert is_transient(_status_error(status)) is retried


def test_timeouts_are_transient() -> None:
    assert is_transient(openai.APITimeoutError(httpx2.Request("POST", "http://llm")))


async def test_concurrent_identical_calls_compute_once_in_a_process() -> None:
    calls = 0

    async def compute() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return "answer"

    async def nothing_cached() -> str | None:
        return None

    # No lock key: the in-process path only (the client never connects; across processes see the integration test).
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    flights = SingleFlight(client, lock_s=1)
    results = await asyncio.gather(*(flights.run("k", None, compute, nothing_cached) for _ in range(10)))
    await client.aclose()
    assert calls == 1
    assert [r[0] for r in results] == ["answer"] * 10
    assert sum(shared for _, shared in results) == 9
