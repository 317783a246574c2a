"""CircuitBreaker: closed → open after N consecutive failures → half-open after a cool-down, one trial call."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from query_api import metrics

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_GAUGE_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class CircuitBreaker:
    """Stops calling a failing dependency for `cooldown_s`, then lets exactly one trial call through.

    Not thread-safe by design: it lives on the API's event loop, where check-and-set needs no lock.
    """

    def __init__(
        self, name: str, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name, self.failures, self.cooldown_s, self.clock = name, failures, cooldown_s, clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._trial_started_at = 0.0
        self._publish()

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose cool-down ended reports half-open)."""
        if self._state is BreakerState.OPEN and self.clock() - self._opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return self._state

    def retry_after_s(self) -> float:
        """Seconds until an open breaker allows its trial call (0 when calls are allowed)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.cooldown_s - (self.clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one trial is let through until it reports back."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        # A trial that never reported back (its caller was cancelled) stops blocking after another cool-down.
        if self._trial_in_flight and self.clock() - self._trial_started_at < self.cooldown_s:
            return False
        self._state, self._trial_in_flight, self._trial_started_at = BreakerState.HALF_OPEN, True, self.clock()
        self._publish()
        return True

    def record_success(self) -> None:
        """A call succeeded: close."""
        if self._state is not BreakerState.CLOSED:
            log.info("breaker %s closed", self.name)
        self._state, self._consecutive, self._trial_in_flight = BreakerState.CLOSED, 0, False
        self._publish()

    def record_failure(self) -> None:
        """A call failed: open after `failures` in a row, or at once when the half-open trial failed."""
        self._consecutive += 1
        trial_failed = self._state is BreakerState.HALF_OPEN
        self._trial_in_flight = False
        if trial_failed or self._consecutive >= self.failures:
            if self._state is not BreakerState.OPEN or trial_failed:
                log.warning(
                    "breaker %s open for %.1fs after %d failures", self.name, self.cooldown_s, self._consecutive
                )
            self._state, self._opened_at = BreakerState.OPEN, self.clock()
        self._publish()

    def _publish(self) -> None:
        metrics.BREAKER_STATE.labels(self.name).set(_GAUGE_VALUE[self._state])
