"""Real servers and worker processes for the integration tests, started once per session on spare ports."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ragbus.settings import Settings, load_settings
from ragbus.stack.launcher import redis_reachable
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from schemas.topics import STAGES

MACHINE_REDIS = "redis://127.0.0.1:6379/0"


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Temporarily set environment variables."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Pipeline:
    """One isolated deployment: its own topic prefix, Redis namespace and Milvus alias, and its own workers."""

    env: dict[str, str]
    home: Path
    workers: list[ManagedProcess] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        with environment(self.env):
            return load_settings()

    def start_workers(self, stages: tuple[str, ...] = STAGES) -> None:
        for stage in stages:
            log = self.home / f"{self.env['RAGBUS_KAFKA_TOPIC_PREFIX']}-{stage}.log"
            argv = [sys.executable, "-m", "ragbus", "worker", stage]
            self.workers.append(ManagedProcess(f"worker-{stage}", argv, log, self.env).start())
        for worker in self.workers:
            worker.wait_ready(lambda w=worker: "ready: consuming" in w.log_path.read_text(), timeout_s=120)

    def stop_workers(self) -> None:
        stop_all(self.workers, timeout_s=10)
        self.workers.clear()


def pipeline_env(kafka: str, milvus: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment of a fresh, isolated deployment on the given servers."""
    name = f"t{uuid.uuid4().hex[:10]}"
    return {
        "RAGBUS_KAFKA_BOOTSTRAP": kafka,
        "RAGBUS_KAFKA_TOPIC_PREFIX": name,
        "RAGBUS_MILVUS_URI": milvus,
        "RAGBUS_MILVUS_ALIAS": f"{name}_chunks",
        "RAGBUS_REDIS_URL": redis_url,
        "RAGBUS_REDIS_NAMESPACE": name,
        "RAGBUS_WORKER_BATCH_TIMEOUT_MS": "20",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **extra,
    }


def test_redis_url(home: Path, started: list[ManagedProcess]) -> str:
    """The machine's Redis when it answers (keys are namespaced per test run), else one we start."""
    if redis_reachable(MACHINE_REDIS):
        return MACHINE_REDIS
    from ragbus.stack.servers import start_redis

    port = free_port()
    started.append(start_redis(home, port))
    return f"redis://127.0.0.1:{port}/0"


def wait_for(predicate, timeout_s: float, interval_s: float = 0.25, message: str = "condition") -> None:  # type: ignore[no-untyped-def]
    """Poll until `predicate()` is truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {message}")
