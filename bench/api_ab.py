"""Uncached retrieval latency of two versions of the query API, side by side on one stack, alternating.

    python -m bench.api_ab --before /path/to/older/checkout [--after .] [--rounds 6] [--per-round 40]
    python -m bench.api_ab --before . --after-env RAGBUS_API_RETRIEVAL=dense   # one tree, two settings

Separates a change in the API's code from a change in the machine: both API processes (each from its own source
tree, each with its own Redis namespace so neither sees the other's cache) serve the same milvus-lite collection,
filled with every SciFact abstract as two chunks (random unit vectors, real text for BM25), and take turns
answering SciFact test questions one at a time (concurrency 1, retrieve_only, every question new to its API).
`--after-env NAME=VALUE` (repeatable) sets variables for the "after" API only, to compare settings the same way;
`--before-env` for the "before" API only.
Writes bench/results/api-ab.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.api_process import start_api
from bench.scifact import load_scifact
from bench.scoring import summary_ms
from bench.stack import ROOT, bench_stack, cpu_seconds, save_result
from bench.stale_removal import fill
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from ragbus.redis_store import KeySpace, open_redis
from ragbus.settings import Settings
from ragbus.stack.process import ManagedProcess, stop_all
from ragbus.write_marks import WriteMarks


def stage_times(header: str) -> dict[str, float]:
    """Seconds per stage of a Server-Timing header (`encode;dur=7.91, ...`); {} without one (an older API)."""
    stages: dict[str, float] = {}
    for part in filter(None, (item.strip() for item in header.split(","))):
        name, _, duration = part.partition(";dur=")
        if duration:
            stages[name.strip()] = float(duration) / 1000
    return stages


@dataclass
class Took:
    """One API's requests: seconds each, as the client saw them, and the stages its Server-Timing named."""

    seconds: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    busy_s: float = 0.0  # wall time of its turns, for requests/s
    cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(("api", "client", "rest"), 0.0))

    def add(self, seconds: float, header: str) -> None:
        """Record one request."""
        self.seconds.append(seconds)
        for name, value in stage_times(header).items():
            self.stages.setdefault(name, []).append(value)

    def summary(self) -> dict[str, object]:
        """Latency percentiles, requests/s over its turns, and each stage's percentiles."""
        return summary_ms(self.seconds) | {
            "requests": len(self.seconds),
            "requests_per_s": round(len(self.seconds) / self.busy_s, 1) if self.busy_s else None,
            # CPU per request during its turns: the API process, this client, and everything else on the machine
            # (Milvus, Redis; other load if the machine is shared).
            "cpu_ms_per_request": {name: round(1000 * cpu / len(self.seconds), 2) for name, cpu in self.cpu_s.items()},
            "stages": {
                name: summary_ms(values) | {"mean_ms": round(1000 * sum(values) / len(values), 2)}
                for name, values in self.stages.items()
            },
        }


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


async def _turn(
    client: httpx.AsyncClient, url: str, questions: list[str], concurrency: int, took: Took, api_pid: int = 0
) -> None:
    """Every question once, `concurrency` at a time; the CPU each side spent meanwhile."""
    pending = iter(questions)

    async def ask() -> None:
        for question in pending:
            began = time.perf_counter()
            body = {"query": question, "top_k": 5, "retrieve_only": True}
            response = await client.post(f"{url}/v1/query", json=body)
            response.raise_for_status()
            took.add(time.perf_counter() - began, response.headers.get("server-timing", ""))

    began, machine, api, own = time.perf_counter(), machine_busy_s(), cpu_seconds([api_pid]), time.process_time()
    await asyncio.gather(*(ask() for _ in range(concurrency)))
    took.busy_s += time.perf_counter() - began
    spent = {"api": cpu_seconds([api_pid]) - api, "client": time.process_time() - own}
    spent["rest"] = machine_busy_s() - machine - spent["api"] - spent["client"]
    for name, cpu in spent.items():
        took.cpu_s[name] += cpu


async def alternate(
    urls: dict[str, str],
    questions: list[str],
    rounds: int,
    per_round: int,
    concurrency: int = 1,
    pids: dict[str, int] | None = None,
) -> dict[str, Took]:
    """Each API's requests; each round gives both the same new questions, in turn, `concurrency` at a time."""
    took = {name: Took() for name in urls}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for url in urls.values():  # first requests load what each process loads lazily
            await _turn(client, url, questions[-5:], 1, Took())
        for round_no in range(rounds):
            order = list(urls) if round_no % 2 == 0 else list(reversed(urls))
            for name in order:
                batch = questions[round_no * per_round : (round_no + 1) * per_round]
                await _turn(client, urls[name], batch, concurrency, took[name], (pids or {}).get(name, 0))
    return took


@contextmanager
def sampled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy samples `pid` (100 Hz, without pausing it) into `out` as collapsed stacks; nothing without `out`."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "-p", str(pid), "-f", "raw", "-o", str(out), "--nonblocking", "-r", "100"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=60)
        if process.returncode:
            print(f"py-spy failed ({process.returncode}): {errors.decode(errors='replace')[-500:]}")


async def record_mark(settings: Settings, namespace: str, collection: str, written: int) -> None:
    """Record the write mark of `collection` on the main Milvus URI (ragbus.write_marks) in a Redis namespace."""
    redis = open_redis(settings.redis)
    try:
        await WriteMarks(redis, KeySpace(namespace)).record(collection, settings.milvus_uri, written)
    finally:
        await redis.aclose()


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree of the earlier version")
    parser.add_argument("--after", type=Path, default=ROOT, help="source tree of the later version (default: this)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=40, help="questions per API per round")
    parser.add_argument(
        "--after-env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the after API only"
    )
    parser.add_argument(
        "--before-env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the before API only"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="requests in flight per API")
    parser.add_argument("--engine", choices=["milvus-lite", "milvus-server"], default="milvus-lite")
    parser.add_argument(
        "--profile", type=Path, help="sample the after API with py-spy meanwhile: collapsed stacks to this file"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api-ab.json")
    args = parser.parse_args()
    data = load_scifact(None, None)
    questions = list(data.queries.values())
    if args.rounds * args.per_round > len(questions) - 5:
        parser.error(f"at most {len(questions) - 5} questions: lower --rounds or --per-round")
    roots = {"before": args.before.resolve(), "after": args.after.resolve()}
    if bad := [item for item in args.after_env + args.before_env if "=" not in item]:
        parser.error(f"--after-env and --before-env take NAME=VALUE, not {bad[0]!r}")
    own_env = {name: dict(item.split("=", 1) for item in getattr(args, f"{name}_env")) for name in ("before", "after")}
    with bench_stack(args.engine) as (env, settings, home):
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        try:
            collection = settings.milvus.initial_collection
            fill(store, collection, data.documents)
            store.client.create_alias(collection, settings.milvus.alias)
            # As the indexer does after each batch: the mark an API that reads at write marks searches at.
            written = store.last_write_ts([collection, MilvusDocumentStates.collection_for(collection)])
        finally:
            store.close()
        processes: list[ManagedProcess] = []
        urls = {}
        try:
            for name, root in roots.items():
                namespace = f"{env['RAGBUS_REDIS_NAMESPACE']}{name}"
                if written:
                    asyncio.run(record_mark(settings, namespace, collection, written))
                process, urls[name] = start_api(
                    {**env, "PYTHONPATH": str(root), "RAGBUS_REDIS_NAMESPACE": namespace, **own_env[name]}, home
                )
                processes.append(process)
            pids = {name: process.proc.pid for name, process in zip(roots, processes, strict=True) if process.proc}
            with sampled(pids["after"], args.profile):
                took = asyncio.run(alternate(urls, questions, args.rounds, args.per_round, args.concurrency, pids))
        finally:
            stop_all(processes, timeout_s=10)
    result = {
        "benchmark": "api_ab",
        "sources": {name: str(root) for name, root in roots.items()},
        "after_env": own_env["after"],
        "before_env": own_env["before"],
        "engine": args.engine,
        "concurrency": args.concurrency,
        "uncached_retrieve_only": {name: t.summary() for name, t in took.items()},
    }
    save_result(result, args.out, "uncached_retrieve_only")


if __name__ == "__main__":
    main()
