"""What a Strong read costs on the real Milvus engine at each proxy time-tick interval.

    python -m bench.milvus_tick [--ticks 200,20,10] [--rows 10000]

A Strong search waits until the query node has seen every write up to the moment it was asked, and that moment
only becomes visible at the next time tick. For each interval the harness starts its own milvus-server (the real
2.3 engine; it needs ports 2379, 2380 and 9091 free), loads `rows` random unit vectors, and measures: the engine's
idle CPU share over 30 s, search latency at Strong and Bounded consistency, and insert → visible to a Strong query.
Writes bench/results/milvus-tick.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.scoring import summary_ms
from bench.stack import ROOT, cpu_seconds
from ragbus.stack.process import ManagedProcess, free_port
from ragbus.stack.servers import start_milvus_server

IDLE_S = 30.0
SEARCHES = 100
COLLECTION = "tick_probe"


def _engine_pids(process: ManagedProcess) -> list[int]:
    """The wrapper and every process in its group (the engine it spawned)."""
    assert process.proc is not None
    pgid = process.proc.pid  # the engine runs in its own process group
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                continue
    return pids


def _timed(call: Callable[[int], object], n: int) -> dict[str, float]:
    took = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        took.append(time.perf_counter() - started)
    return summary_ms(took)


def measure(tick_ms: int, rows: int) -> dict[str, object]:
    """One engine at `tick_ms`: idle CPU, search latency by consistency level, write-to-visible."""
    from pymilvus import MilvusClient

    with tempfile.TemporaryDirectory(prefix="ragbus-tick-") as home:
        port = free_port()
        process = start_milvus_server(Path(home), port, time_tick_ms=tick_ms)
        client = MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=30)
        try:
            time.sleep(10)  # start-up work settles
            pids = _engine_pids(process)
            before = cpu_seconds(pids)
            time.sleep(IDLE_S)
            idle_cpu = (cpu_seconds(pids) - before) / IDLE_S

            client.create_collection(COLLECTION, dimension=384, metric_type="IP", consistency_level="Strong")
            rng = np.random.default_rng(0)
            vectors = rng.standard_normal((rows, 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            for start in range(0, rows, 2000):
                batch = range(start, min(start + 2000, rows))
                client.insert(COLLECTION, [{"id": i, "vector": vectors[i].tolist()} for i in batch])
            client.flush(COLLECTION)

            def search(level: str) -> Callable[[int], object]:
                return lambda i: client.search(
                    COLLECTION, [vectors[i % rows].tolist()], limit=5, consistency_level=level
                )

            def write_then_read(i: int) -> None:
                key = rows + 1_000_000 + i
                client.insert(COLLECTION, [{"id": key, "vector": vectors[i].tolist()}])
                assert client.query(COLLECTION, filter=f"id == {key}", consistency_level="Strong")

            return {
                "time_tick_ms": tick_ms,
                "idle_cpu_share": round(idle_cpu, 3),
                "search_strong": _timed(search("Strong"), SEARCHES),
                "search_bounded": _timed(search("Bounded"), SEARCHES),
                "insert_then_strong_query": _timed(write_then_read, 30),
            }
        finally:
            client.close()
            process.stop(timeout_s=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", default="200,20,10", help="intervals in ms, comma-separated")
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    results = [measure(int(tick), args.rows) for tick in args.ticks.split(",")]
    out = {
        "benchmark": "milvus_tick",
        "engine": "milvus-server 2.3 (PyPI milvus)",
        "rows": args.rows,
        "results": results,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = ROOT / "bench" / "results" / "milvus-tick.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    for row in results:
        print(row)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
