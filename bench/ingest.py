"""Ingestion throughput: SciFact through the whole pipeline vs the embedding model alone on the same chunks.

    python -m bench.ingest [--docs N] [--embedders N --embed-threads T]

Starts its own tansu (memory), milvus-lite and uses Redis (machine's or its own), runs the three workers as
processes, publishes N SciFact abstracts, and times until every one is searchable. Then, in the same run, encodes
the very same chunk texts with `SentenceEmbedder.encode` at the same batch size. Writes bench/results/ingest.json.
The embedding cache namespace is fresh, so the pipeline embeds everything (cold).

With --embedders 2 --embed-threads 1 the pipeline runs two embedder processes of one model thread each (on
four partitions) instead of one using every core; the raw encode stays the model alone with its defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from bench.stack import ROOT, SCIFACT, bench_stack, ingest, process_cpu, start_workers
from producers.sources import read_documents
from ragbus.embedding import ModelTokenizer, SentenceEmbedder
from ragbus.milvus_store import MilvusChunkStore
from ragbus.stack.process import stop_all
from workers.chunker.chunking import TokenChunker


def run(docs: int, embedders: int = 1, embed_threads: int = 0) -> dict[str, object]:
    """One measurement; returns the result record."""
    scaled = {"RAGBUS_KAFKA_PARTITIONS": str(2 * embedders)} if embedders > 1 else {}
    with bench_stack() as (env, settings, home):
        pipeline_env = {**env, **scaled, **({"RAGBUS_EMBED_THREADS": str(embed_threads)} if embed_threads else {})}
        workers = start_workers(pipeline_env, home, embedders=embedders)
        try:
            before = process_cpu()
            pipeline_s, _ = ingest(settings, docs)
            cpu = {name: round(used - before.get(name, 0.0), 1) for name, used in process_cpu().items()}
            store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
            chunks = store.count_chunks()
            store.close()
        finally:
            stop_all(workers, timeout_s=10)
    events = read_documents([SCIFACT])[:docs]

    # The embedding compute the pipeline cannot avoid: the same chunk texts, same model, same batch size.
    chunker = TokenChunker(ModelTokenizer.from_settings(settings.embedding), settings.chunking)
    texts = [d.embedding_input(c) for d in (chunker.chunk(e) for e in events) for c in d.chunks]
    embedder = SentenceEmbedder(settings.embedding).load()
    embedder.encode(texts[:64], check_length=False)  # warm-up
    started, cpu_before = time.perf_counter(), process_cpu()["bench"]
    embedder.encode(texts, check_length=False)
    raw_s = time.perf_counter() - started
    raw_cpu = process_cpu()["bench"] - cpu_before
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
        "embedder_processes": embedders,
        "embedder_threads": embed_threads or os.cpu_count(),
        # Where the machine's CPU went while the pipeline ran (the machine's shared Redis is not a child: absent).
        "pipeline_cpu_seconds": dict(sorted(cpu.items(), key=lambda item: -item[1])),
        "raw_encode_cpu_seconds": round(raw_cpu, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=5183)
    parser.add_argument("--embedders", type=int, default=1, help="embedder processes in the pipeline")
    parser.add_argument("--embed-threads", type=int, default=0, help="RAGBUS_EMBED_THREADS of each (0: default)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    result = run(args.docs, args.embedders, args.embed_threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
