"""How long an indexer batch waits behind the sealer's flush, on each engine.

    python -m bench.sealer_wait [--engines milvus-lite,milvus-server] [--rounds 8] [--rows 200]

For each engine the harness starts its own server, then per round writes `rows` random 384-dimensional vectors
into one collection, starts the sealer's flush (workers/indexer/sealer.py `CollectionSealer.seal`) and, as soon as
the flush is under way, enters `between_flushes` as an indexer batch does. It reports, in seconds, how long the
batch waited and how long the whole seal took (the request and the wait until the server persisted the sealed
segments). Writes bench/results/sealer-wait.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.stack import ROOT, save_result
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import MilvusSettings
from ragbus.stack.process import free_port, stop_all
from ragbus.stack.servers import start_milvus_lite, start_milvus_server
from workers.indexer.sealer import CollectionSealer

STARTS = {"milvus-lite": start_milvus_lite, "milvus-server": start_milvus_server}


async def rounds_on(store: MilvusChunkStore, rounds: int, rows: int) -> dict[str, list[float]]:
    store.client.create_collection("sealed", dimension=384)
    sealer = CollectionSealer(store, "sealed", interval_s=10.0)
    sealer.collections = ["sealed"]  # one plain collection (the indexer's seals its chunks and document states)
    waited, sealed = [], []
    rng = np.random.default_rng(7)
    for number in range(rounds):
        vectors = rng.random((rows, 384), dtype=np.float32)
        store.client.insert("sealed", [{"id": number * rows + i, "vector": v.tolist()} for i, v in enumerate(vectors)])
        sealer.wrote()
        began = time.perf_counter()
        seal = asyncio.create_task(sealer.seal())
        await asyncio.sleep(0)  # the seal takes the lock and is under way
        async with sealer.between_flushes():
            waited.append(time.perf_counter() - began)
        await seal
        sealed.append(time.perf_counter() - began)
    return {"batch_waited_s": waited, "seal_s": sealed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", type=lambda s: s.split(","), default=list(STARTS))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sealer-wait.json")
    args = parser.parse_args()
    results: dict[str, object] = {}
    for engine in args.engines:
        with tempfile.TemporaryDirectory() as home:
            port = free_port()
            server = STARTS[engine](Path(home), port)
            try:
                store = MilvusChunkStore(MilvusSettings(), f"http://127.0.0.1:{port}")
                try:
                    runs = asyncio.run(rounds_on(store, args.rounds, args.rows))
                finally:
                    store.close()
            finally:
                stop_all([server], timeout_s=20)
        results[engine] = {
            **{name: [round(s, 3) for s in values] for name, values in runs.items()},
            "batch_waited_median_s": round(statistics.median(runs["batch_waited_s"]), 3),
            "seal_median_s": round(statistics.median(runs["seal_s"]), 3),
        }
    save_result({"benchmark": "sealer_wait", "rounds": args.rounds, "rows": args.rows, "engines": results},
                args.out, "engines")  # fmt: skip


if __name__ == "__main__":
    main()
