"""ProcessSupervisor on real child processes (a steered clock stands in for the backoff waits)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragbus.stack.process import ManagedProcess, ProcessFailed, stop_all
from ragbus.stack.supervisor import ProcessSupervisor, RestartPolicy

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]
CRASHER = [sys.executable, "-c", "import sys; print('boom', flush=True); sys.exit(3)"]


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ManagedProcess]]:
    processes: list[ManagedProcess] = []
    yield processes
    stop_all(processes, timeout_s=5)


def _process(tmp_path: Path, started: list[ManagedProcess], name: str, argv: list[str]) -> ManagedProcess:
    process = ManagedProcess(name, argv, tmp_path / f"{name}.log").start()
    started.append(process)
    return process


def _kill(process: ManagedProcess) -> None:
    assert process.proc is not None
    process.proc.send_signal(signal.SIGKILL)
    process.proc.wait(timeout=10)


def test_a_killed_worker_is_restarted_after_its_backoff_and_said(tmp_path: Path, started: list[ManagedProcess]) -> None:
    clock, said = Clock(), []
    supervisor = ProcessSupervisor(RestartPolicy(first_backoff_s=1.0), clock=clock, say=said.append)
    worker = _process(tmp_path, started, "worker-chunker", SLEEPER)
    worker.wait_ready(lambda: "up" in worker.log_tail(), timeout_s=30)
    supervisor.check([], [worker])
    first_pid = worker.proc.pid if worker.proc else None
    _kill(worker)

    clock.now += 0.5
    supervisor.check([], [worker])
    assert said[0].startswith("worker-chunker exited (code -9); restarting in 1.0s (crash 1 in a row, 5 allowed)")
    assert "its log" in said[0] and "up" in said[0]  # the tail of its log comes with it
    clock.now += 0.9
    supervisor.check([], [worker])
    assert not worker.running  # still waiting out its backoff
    clock.now += 0.2
    supervisor.check([], [worker])
    assert worker.running and worker.proc is not None and worker.proc.pid != first_pid
    assert said[-1] == f"restarted worker-chunker (pid {worker.proc.pid})"


def test_a_crash_loop_backs_off_exponentially_then_stops_the_stack(
    tmp_path: Path, started: list[ManagedProcess]
) -> None:
    clock, said = Clock(), []
    policy = RestartPolicy(first_backoff_s=1.0, max_backoff_s=4.0, healthy_after_s=60, max_restarts=4)
    supervisor = ProcessSupervisor(policy, clock=clock, say=said.append)
    worker = _process(tmp_path, started, "worker-embedder", CRASHER)
    waits: list[float] = []

    def crash_until_given_up() -> None:
        for _ in range(10):
            assert worker.proc is not None
            worker.proc.wait(timeout=30)
            supervisor.check([], [worker])  # notes the crash and schedules the restart
            waits.append(float(said[-1].split("restarting in ")[1].split("s ")[0]))
            clock.now += waits[-1]
            supervisor.check([], [worker])  # restarts it; it crashes again at once

    with pytest.raises(ProcessFailed, match="worker-embedder exited \\(code 3\\); it crashed 5 times in a row"):
        crash_until_given_up()
    assert waits == [1.0, 2.0, 4.0, 4.0]  # doubled, capped at max_backoff_s; the fifth crash gives up


def test_a_healthy_run_resets_the_backoff(tmp_path: Path, started: list[ManagedProcess]) -> None:
    clock, said = Clock(), []
    policy = RestartPolicy(first_backoff_s=1.0, healthy_after_s=60, max_restarts=2)
    supervisor = ProcessSupervisor(policy, clock=clock, say=said.append)
    worker = _process(tmp_path, started, "api", SLEEPER)
    supervisor.check([], [worker])
    for expected in ("1.0s", "2.0s"):  # two quick crashes
        _kill(worker)
        supervisor.check([], [worker])
        assert f"restarting in {expected}" in said[-1]
        clock.now += 2.0
        supervisor.check([], [worker])
        assert worker.running
    clock.now += 61  # then it runs healthily for a while ...
    supervisor.check([], [worker])
    for _ in range(2):  # ... so two more crashes are again within the limit, the first one waiting 1 s
        _kill(worker)
        supervisor.check([], [worker])
        assert "restarting in" in said[-1]
        clock.now += 2.0
        supervisor.check([], [worker])
    assert "restarting in 1.0s (crash 1 in a row" in said[-4]
    assert "restarting in 2.0s (crash 2 in a row" in said[-2]
    assert worker.running


def test_a_server_that_exits_stops_the_stack_at_once(tmp_path: Path, started: list[ManagedProcess]) -> None:
    server = _process(tmp_path, started, "tansu", CRASHER)
    assert server.proc is not None
    server.proc.wait(timeout=30)
    with pytest.raises(ProcessFailed, match="tansu exited \\(code 3\\); a server is not restarted") as failed:
        ProcessSupervisor().check([server], [])
    assert "boom" in str(failed.value)  # with the tail of its log
