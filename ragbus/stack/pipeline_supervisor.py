"""Runs the workers of every live indexing pipeline in the embedded stack, following the pipelines registry.

`ragbus reindex` only registers a pipeline; this starts its workers (one per stage) within seconds, and stops them
when the pipeline is retired (abandoned or pruned). The default pipeline's workers are the stack's plain workers.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from ragbus.pipelines import PipelineRegistry
from ragbus.settings import Settings
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from schemas.pipelines import PipelineSpec, PipelineState
from schemas.topics import STAGES

log = logging.getLogger(__name__)


class PipelineSupervisor:
    """Keeps one worker per stage of each non-retired pipeline running."""

    def __init__(self, settings: Settings, env: dict[str, str], logs: Path) -> None:
        self.settings, self.env, self.logs = settings, env, logs
        self.trios: dict[str, list[ManagedProcess]] = {}
        self.metrics_ports: dict[str, int] = {}  # worker name -> port of its /metrics

    def metrics_urls(self) -> dict[str, str]:
        """Where each running worker serves /metrics."""
        running = {p.name for p in self.processes()}
        ports = self.metrics_ports
        return {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items() if name in running}

    def processes(self) -> list[ManagedProcess]:
        """Every worker it started."""
        return [p for trio in self.trios.values() for p in trio]

    def sync(self) -> None:
        """Start the workers of new pipelines and stop those of retired ones."""
        specs = asyncio.run(PipelineRegistry(self.settings).load())
        default = self.settings.milvus.initial_collection
        live = {name for name, spec in specs.items() if spec.state is not PipelineState.RETIRED}
        if default not in specs:
            live.add(default)  # not registered yet: the first pipeline runs from the start
        for name in sorted(live - set(self.trios)):
            self._start(name, specs.get(name))
        for name in sorted(set(self.trios) - live):
            log.info("pipeline %s retired: stopping its workers", name)
            print(f"pipeline {name} retired: stopping its workers", flush=True)
            stop_all(self.trios.pop(name), timeout_s=10)

    def _start(self, name: str, spec: PipelineSpec | None) -> None:
        named = spec is not None and not spec.default
        trio = []
        for stage in STAGES:
            suffix = f"@{name}" if named else ""
            process_name = f"worker-{stage}{suffix}"
            port = self.metrics_ports.setdefault(process_name, free_port())  # kept across a restart
            env = {
                **self.env,
                "RAGBUS_WORKER_METRICS_PORT": str(port),
                **({"RAGBUS_WORKER_PIPELINE": name} if named else {}),
            }
            argv = [sys.executable, "-m", "ragbus", "worker", stage]
            log_path = self.logs / (f"{name}-{stage}.log" if named else f"{stage}.log")
            print(f"starting worker {stage}{suffix} (metrics on http://127.0.0.1:{port}/metrics) ...", flush=True)
            trio.append(ManagedProcess(process_name, argv, log_path, env).start())
        self.trios[name] = trio

    def stop(self, timeout_s: float) -> None:
        """Stop every worker it started."""
        stop_all(self.processes(), timeout_s=timeout_s)
        self.trios.clear()
