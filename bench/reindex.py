"""Reindex of the SciFact corpus from the log: with a cold embedding cache vs a warm one.

    python -m bench.reindex [--docs N]

Starts its own tansu (memory) and milvus-lite and uses Redis (the machine's or its own), publishes N SciFact
abstracts to the documents topic, then runs two full reindexes exactly as `ragbus reindex` does (new pipeline, its
three worker processes replay the documents topic, verify, atomic alias switch):
- cold: the embedding cache is emptied first, so every chunk is embedded again;
- warm: same chunking and model right after, so every chunk is found in the cache and none is embedded.
Times run from the reindex start to the switch, and also without the workers' start-up (model loading).
Writes bench/results/reindex.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import redis

from bench.stack import ROOT, SCIFACT, bench_stack, start_workers
from producers.sources.files import read_documents
from ragbus.document_publisher import publish_documents
from ragbus.milvus.collections import MilvusCollectionAdmin
from ragbus.milvus.store import MilvusChunkStore
from ragbus.reindex import Reindexer, ReindexOptions
from ragbus.settings import Settings
from ragbus.stack.process import ManagedProcess, stop_all


def _flush_embeddings(settings: Settings) -> int:
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        keys = list(client.scan_iter(f"{settings.redis.namespace}:emb:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        return len(keys)
    finally:
        client.close()


def _reindex(settings: Settings, env: dict[str, str], home: Path, name: str) -> dict[str, float]:
    reindexer = Reindexer(settings)
    started = time.perf_counter()
    spec = asyncio.run(reindexer.start(ReindexOptions(collection=name)))
    workers: list[ManagedProcess] = []
    try:
        workers = start_workers(env | {"RAGBUS_WORKER_PIPELINE": name}, home, prefix=f"{name}-")
        ready = time.perf_counter()
        asyncio.run(reindexer.finish(spec, timeout_s=3600, on_progress=None))
        done = time.perf_counter()
    finally:
        stop_all(workers, timeout_s=10)
    return {"seconds": round(done - started, 2), "replay_seconds": round(done - ready, 2)}


def run(docs: int) -> dict[str, object]:
    """One measurement; returns the result record."""
    with bench_stack() as (env, settings, home):
        events = read_documents([SCIFACT])[:docs]
        asyncio.run(publish_documents(settings, events))
        flushed = _flush_embeddings(settings)
        alias = settings.milvus.alias
        cold = _reindex(settings, env, home, f"{alias}_cold")
        warm = _reindex(settings, env, home, f"{alias}_warm")
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        admin = MilvusCollectionAdmin(store)
        chunks = {"cold": admin.chunk_count(f"{alias}_cold"), "warm": admin.chunk_count(f"{alias}_warm")}
        served = store.alias_target()
        store.close()
    return {
        "benchmark": "reindex",
        "documents": len(events),
        "chunks": chunks,
        "served_after": served,
        "embeddings_flushed_before_cold": flushed,
        "cold": cold,
        "warm": warm,
        "speedup_warm_over_cold": round(cold["seconds"] / warm["seconds"], 2),
        "speedup_replay_only": round(cold["replay_seconds"] / warm["replay_seconds"], 2),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=5183)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reindex.json")
    args = parser.parse_args()
    result = run(args.docs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2), file=sys.stdout)


if __name__ == "__main__":
    main()
