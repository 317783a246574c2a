"""Real servers and worker processes for the integration tests, started once per session on spare ports."""

from __future__ import annotations

import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator
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

    metrics_ports: dict[str, int] = field(default_factory=dict)

    def start_worker(self, stage: str, **extra_env: str) -> ManagedProcess:
        """Start one worker process (its /metrics on a spare port) and wait until it consumes."""
        # A reindex pipeline's worker (RAGBUS_WORKER_PIPELINE) runs beside the default one: its own port and log.
        name = f"{stage}@{extra_env['RAGBUS_WORKER_PIPELINE']}" if "RAGBUS_WORKER_PIPELINE" in extra_env else stage
        port = self.metrics_ports.setdefault(name, free_port())
        log = self.home / f"{self.env['RAGBUS_KAFKA_TOPIC_PREFIX']}-{name}.log"
        env = {**self.env, "RAGBUS_WORKER_METRICS_PORT": str(port), **extra_env}
        marker = log.read_text().count("ready: consuming") if log.exists() else 0
        worker = ManagedProcess(f"worker-{name}", [sys.executable, "-m", "ragbus", "worker", stage], log, env)
        self.workers.append(worker.start())
        worker.wait_ready(lambda: log.read_text().count("ready: consuming") > marker, timeout_s=120)
        return worker

    def start_workers(self, stages: tuple[str, ...] = STAGES) -> None:
        for stage in stages:
            self.start_worker(stage)

    def worker(self, stage: str) -> ManagedProcess:
        """The running process of a stage."""
        return next(w for w in reversed(self.workers) if w.name == f"worker-{stage}" and w.running)

    def metric(self, stage: str, name: str) -> float:
        """Sum of a metric's samples on a worker's /metrics."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[stage]}/metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    def lag(self) -> int:
        """Uncommitted messages summed over the stages' input topics."""
        import asyncio

        from ragbus.kafka_clients import consumer_lag
        from schemas.topics import PipelineTopics, Topics

        settings = self.settings
        names = PipelineTopics(Topics(settings.kafka.topic_prefix))
        return sum(
            sum(asyncio.run(consumer_lag(settings, names.group(stage), topic)).values())
            for stage in STAGES
            for topic in names.input_topics(stage)  # both lanes
        )

    def wait_drained(self, timeout_s: float = 180) -> None:
        """Wait until every stage has committed everything on its input topic."""
        wait_for(lambda: self.lag() == 0, timeout_s=timeout_s, interval_s=0.5, message="pipeline lag 0")

    def stop_workers(self) -> None:
        stop_all(self.workers, timeout_s=10)
        self.workers.clear()


@contextmanager
def running_pipeline(env: dict[str, str], home: Path) -> Iterator[Pipeline]:
    """A pipeline whose workers (one per stage) run for the duration of the block."""
    pipeline = Pipeline(env=env, home=home)
    try:
        pipeline.start_workers()
        yield pipeline
    finally:
        pipeline.stop_workers()


# Settings a client needs for a secured Milvus server the tests started (URI -> RAGBUS_MILVUS_* variables).
SECURED_MILVUS: dict[str, dict[str, str]] = {}


def secure_real_milvus(uri: str, ca: Path, token_path: Path) -> Path:
    """Replace the engine's initial root password with a random one; returns a token file (mode 600) holding it."""
    from pymilvus import MilvusClient

    password = secrets.token_urlsafe(12)
    client = MilvusClient(uri=uri, token="root:Milvus", server_pem_path=str(ca), timeout=30)
    try:
        client.update_password("root", "Milvus", password)
    finally:
        client.close()
    token_path.touch(mode=0o600)
    token_path.write_text(f"root:{password}\n")
    return token_path


def pipeline_env(kafka: str, milvus: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment of a fresh, isolated deployment on the given servers (with the credentials a secured one needs)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    return {
        "RAGBUS_KAFKA_BOOTSTRAP": kafka,
        "RAGBUS_KAFKA_TOPIC_PREFIX": name,
        "RAGBUS_MILVUS_URI": milvus,
        "RAGBUS_MILVUS_ALIAS": f"{name}_chunks",
        "RAGBUS_REDIS_URL": redis_url,
        "RAGBUS_REDIS_NAMESPACE": name,
        "RAGBUS_WORKER_BATCH_TIMEOUT_MS": "20",
        "RAGBUS_CHUNK_MAX_DOCUMENT_CHARS": "100000",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "RAGBUS_API_AUTH": "off",  # the security tests switch it on with their own keys
        **SECURED_MILVUS.get(milvus, {}),
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


def wait_for(
    predicate: Callable[[], object], timeout_s: float, interval_s: float = 0.25, message: str = "condition"
) -> None:
    """Poll until `predicate()` is truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {message}")
