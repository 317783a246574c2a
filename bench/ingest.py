"""Ingestion throughput: SciFact through the whole pipeline vs the embedding model alone on the same chunks.

    python -m bench.ingest [--docs N]

Starts its own tansu (memory), milvus-lite and uses Redis (machine's or its own), runs the three workers as
processes, publishes N SciFact abstracts, and times until every one is searchable. Then, in the same run, encodes
the very same chunk texts with `SentenceEmbedder.encode` at the same batch size. Writes bench/results/ingest.json.
The embedding cache namespace is fresh, so the pipeline embeds everything (cold).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

from producers.publisher import publish_documents
from producers.sources import read_documents
from producers.wait import wait_until_indexed
from ragbus.embedding import ModelTokenizer, SentenceEmbedder
from ragbus.milvus_store import MilvusChunkStore
from ragbus.settings import load_settings
from ragbus.stack.launcher import redis_reachable
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from ragbus.stack.servers import start_milvus_lite, start_redis, start_tansu
from schemas.topics import STAGES
from workers.chunker.chunking import TokenChunker

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"


def run(docs: int) -> dict[str, object]:
    """One measurement; returns the result record."""
    home = Path(tempfile.mkdtemp(prefix="ragbus-bench-"))
    servers: list[ManagedProcess] = []
    workers: list[ManagedProcess] = []
    kafka_port, milvus_port = free_port(), free_port()
    servers.append(start_tansu(home, kafka_port, "memory"))
    servers.append(start_milvus_lite(home, milvus_port))
    redis_url = "redis://127.0.0.1:6379/0"
    if not redis_reachable(redis_url):
        redis_port = free_port()
        servers.append(start_redis(home, redis_port))
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
    name = f"bench{uuid.uuid4().hex[:8]}"
    env = {
        "RAGBUS_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "RAGBUS_KAFKA_TOPIC_PREFIX": name,
        "RAGBUS_MILVUS_URI": f"http://127.0.0.1:{milvus_port}",
        "RAGBUS_MILVUS_ALIAS": f"{name}_chunks",
        "RAGBUS_REDIS_URL": redis_url,
        "RAGBUS_REDIS_NAMESPACE": name,
        "HF_HUB_OFFLINE": "1",
    }
    os.environ.update(env)
    settings = load_settings()
    try:
        for stage in STAGES:
            argv = [sys.executable, "-m", "ragbus", "worker", stage]
            workers.append(ManagedProcess(stage, argv, home / f"{stage}.log", env).start())
        for worker in workers:
            worker.wait_ready(lambda w=worker: "ready: consuming" in w.log_path.read_text(), timeout_s=180)
        events = read_documents([SCIFACT])[:docs]
        started = time.perf_counter()
        report = asyncio.run(publish_documents(settings, events))
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        pending = asyncio.run(wait_until_indexed(store, dict(report.versions), timeout_s=3600, poll_s=1.0))
        pipeline_s = time.perf_counter() - started
        chunks = store.count_chunks()
        store.close()
        assert not pending, f"{len(pending)} documents not indexed"
    finally:
        stop_all(workers, timeout_s=10)
        stop_all(servers, timeout_s=10)

    # The embedding compute the pipeline cannot avoid: the same chunk texts, same model, same batch size.
    chunker = TokenChunker(ModelTokenizer.from_settings(settings.embedding), settings.chunking)
    texts = [d.embedding_input(c) for d in (chunker.chunk(e) for e in events) for c in d.chunks]
    embedder = SentenceEmbedder(settings.embedding).load()
    embedder.encode(texts[:64], check_length=False)  # warm-up
    started = time.perf_counter()
    embedder.encode(texts, check_length=False)
    raw_s = time.perf_counter() - started
    return {
        "benchmark": "ingest",
        "documents": len(events),
        "chunks": chunks,
        "pipeline_seconds": round(pipeline_s, 2),
        "pipeline_docs_per_s": round(len(events) / pipeline_s, 2),
        "pipeline_chunks_per_s": round(chunks / pipeline_s, 2),
        "raw_encode_seconds": round(raw_s, 2),
        "raw_chunks_per_s": round(len(texts) / raw_s, 2),
        "ratio_pipeline_over_raw": round((chunks / pipeline_s) / (len(texts) / raw_s), 3),
        "batch_size": settings.embedding.batch_size,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=5183)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    result = run(args.docs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
