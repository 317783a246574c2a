"""ManagedProcess: a child process with a log file, a readiness wait and a bounded stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ragbus.errors import PortInUse, RagbusError


class ProcessFailed(RagbusError):
    """A server or worker exited or did not become ready; the message has the tail of its log."""

    code = "process_failed"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something listens on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free_port(port: int, setting: str, what: str) -> None:
    """Fail with a message naming the port and the setting that moves it."""
    if port_in_use(port):
        raise PortInUse(
            f"port {port} needed by the embedded {what} is already in use: set {setting} to a free port "
            "(or point ragbus at the server already there)"
        )


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, *, besides: Sequence[int] = ()) -> list[int]:
    """`count` distinct ports nothing listens on right now, none of them in `besides`.

    The sockets stay bound until all are chosen, so the kernel cannot hand the same port out twice.
    """
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in besides:
                ports.append(port)
        return ports


class ManagedProcess:
    """One child process, logging to `log_path`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        own_group: bool = False,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        # own_group: the process leads a process group and signals go to the whole group (for wrappers that
        # spawn the real server as a child and would otherwise leave it behind).
        self.name, self.argv, self.log_path, self.own_group = name, list(argv), log_path, own_group
        self.stop_signal = stop_signal
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process (its output goes to the log file)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=self.own_group,
            )
        return self

    @property
    def running(self) -> bool:
        """The process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, check: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> None:
        """Poll `check` until it is true; ProcessFailed if the process dies or the timeout passes."""
        try:
            self._wait_ready(check, timeout_s, interval_s)
        except BaseException:
            self.stop(timeout_s=5)  # not ready (or interrupted): never leave it running unowned
            raise

    def _wait_ready(self, check: Callable[[], bool], timeout_s: float, interval_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise ProcessFailed(f"{self.name} exited during start-up; log {self.log_path}:\n{self.log_tail()}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(interval_s)
        raise ProcessFailed(f"{self.name} not ready after {timeout_s:.0f}s; log {self.log_path}:\n{self.log_tail()}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Send a signal if the process is alive."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.own_group:
                os.killpg(self.proc.pid, sig)  # the group outlives a wrapper that already exited
            elif self.running:
                self.proc.send_signal(sig)

    def wait_stopped(self, timeout_s: float) -> bool:
        """Wait for exit; True when it exited within the timeout."""
        if self.proc is None:
            return True
        deadline = time.monotonic() + timeout_s
        try:
            self.proc.wait(timeout=max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            return False
        while self.own_group and self._group_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _group_alive(self) -> bool:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """The stop signal (SIGTERM), then SIGKILL if it has not exited within the timeout."""
        self.signal(self.stop_signal)
        if not self.wait_stopped(timeout_s):
            self.signal(signal.SIGKILL)
            self.wait_stopped(2.0)


def stop_all(processes: Sequence[ManagedProcess], timeout_s: float) -> None:
    """Stop processes (signalled together, newest first) so the whole stop stays within `timeout_s`."""
    alive = [p for p in reversed(processes) if p.running or p.own_group]
    for p in alive:
        p.signal(p.stop_signal)
    deadline = time.monotonic() + timeout_s
    for p in alive:
        if not p.wait_stopped(deadline - time.monotonic()):
            p.signal(signal.SIGKILL)
            p.wait_stopped(1.0)
