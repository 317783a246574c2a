"""Supervision of the embedded stack, as a process manager does it: a ragbus process (worker or API) that exits is
restarted after a bounded exponential backoff, reset once it has run healthily for a while; a server that exits,
or a process that keeps crashing past the limit, stops the stack."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragbus.stack.process import ManagedProcess, ProcessFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before each restart, and when to give up."""

    first_backoff_s: float = 1.0  # doubled after each crash in a row ...
    max_backoff_s: float = 30.0  # ... up to this
    healthy_after_s: float = 60.0  # a run this long ends the streak: the next crash waits first_backoff_s again
    max_restarts: int = 5  # crashes in a row restarted; the one after stops the stack

    def backoff_s(self, streak: int) -> float:
        """Wait before the restart that follows the `streak`-th crash in a row (1, 2, ...)."""
        return float(min(self.max_backoff_s, self.first_backoff_s * 2 ** (streak - 1)))


@dataclass
class _Record:
    """What the supervisor knows of one process."""

    started_at: float
    streak: int = 0  # crashes since its last healthy run
    restart_at: float | None = None  # set while it is down, waiting for its backoff


class ProcessSupervisor:
    """Call `check` every second or so; it never blocks (a restart waits for its time across calls)."""

    def __init__(
        self,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] | None = None,
    ) -> None:
        # `say`: where restarts are reported (`ragbus up` prints them to its output); the log by default.
        self.policy, self.clock = policy or RestartPolicy(), clock
        self.say = say or (lambda message: log.warning("%s", message))
        self.records: dict[int, _Record] = {}

    def check(self, servers: Sequence[ManagedProcess], restartable: Sequence[ManagedProcess]) -> None:
        """ProcessFailed for a server that exited or a process that crash-looped; restart the others when due."""
        for server in servers:
            if not server.running:
                raise ProcessFailed(f"{_exited(server)}; a server is not restarted, so the stack stops{_tail(server)}")
        now = self.clock()
        # Forget processes no longer supervised (a retired pipeline's workers): an id can be reused.
        supervised = {id(p) for p in restartable}
        self.records = {key: record for key, record in self.records.items() if key in supervised}
        for process in restartable:
            record = self.records.setdefault(id(process), _Record(started_at=now))
            if process.running:
                if now - record.started_at >= self.policy.healthy_after_s:
                    record.streak = 0
            elif record.restart_at is None:
                self._crashed(process, record, now)
            elif now >= record.restart_at:
                try:
                    process.start()
                except OSError as exc:
                    raise ProcessFailed(f"{process.name} could not be restarted: {exc}") from exc
                record.started_at, record.restart_at = now, None
                self.say(f"restarted {process.name} (pid {process.proc.pid if process.proc else '?'})")

    def _crashed(self, process: ManagedProcess, record: _Record, now: float) -> None:
        if now - record.started_at >= self.policy.healthy_after_s:
            record.streak = 0
        record.streak += 1
        if record.streak > self.policy.max_restarts:
            raise ProcessFailed(
                f"{_exited(process)}; it crashed {record.streak} times in a row, each within "
                f"{self.policy.healthy_after_s:.0f}s of starting, so the stack stops{_tail(process)}"
            )
        wait_s = self.policy.backoff_s(record.streak)
        record.restart_at = now + wait_s
        self.say(
            f"{_exited(process)}; restarting in {wait_s:.1f}s "
            f"(crash {record.streak} in a row, {self.policy.max_restarts} allowed){_tail(process)}"
        )


def _exited(process: ManagedProcess) -> str:
    return f"{process.name} exited (code {process.proc.returncode if process.proc else '?'})"


def _tail(process: ManagedProcess) -> str:
    return f"\n  its log {process.log_path} ends:\n{process.log_tail(5)}"
