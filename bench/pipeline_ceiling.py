"""The pipeline's ceiling without the model: chunks/s through the real workers, Kafka and Milvus, per stage.

    python -m bench.pipeline_ceiling [--engine milvus-lite|milvus-server] [--docs N] [--copies K] [--embedders N]

Starts its own tansu (memory), Milvus (milvus-lite, or the real 2.3 engine with --engine milvus-server) and Redis
(fresh namespace), runs the four workers as processes with `RAGBUS_EMBED_BACKEND=bench-null`: the embedder reads
and writes the embedding cache, checks lengths with the model's tokenizer and publishes as always, but its vectors
come from a hash of each text at next to no cost (`ragbus/bench_null_embedding.py`; only this harness sets
RAGBUS_BENCH_NULL_EMBEDDINGS, which the settings demand for that backend). Everything else is the real pipeline.

It publishes N SciFact abstracts (K copies of each, with their own ids and text, so nothing is a cache hit) and
times until the indexer has committed them all, then checks every one is searchable. Per stage, from each
worker's Prometheus metrics (`ragbus_stage_batch_seconds`, `ragbus_stage_messages_total`) read before and after:
seconds spent in batches, that time's share of the wall clock (per replica), chunks per busy second; and the CPU
seconds of every process (workers, tansu, Milvus; the machine's own Redis is not a child and is not counted), and
per stage chunks per CPU second, the steadier figure where other jobs share the cores.
The stage with the highest busy share is the one that stops first: the others wait on it. Writes
bench/results/pipeline-ceiling[-<engine>].json (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import unicodedata
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.stack import ENGINES, ROOT, SCIFACT, bench_stack, index_timed, process_cpu, save_result, start_workers
from ragbus.milvus.store import MilvusChunkStore
from ragbus.stack.process import ManagedProcess, free_ports, stop_all
from schemas.documents import DocumentEvent
from schemas.topics import STAGES

NULL_EMBEDDINGS = {"RAGBUS_EMBED_BACKEND": "bench-null", "RAGBUS_BENCH_NULL_EMBEDDINGS": "1"}


def corpus(path: Path, docs: int, copies: int) -> list[DocumentEvent]:
    """The first `docs` SciFact abstracts, `copies` times: each copy its own document ids and chunk texts.

    Read here rather than by `read_documents`, which refuses the whole file for the two abstracts that hold a C1
    control character (U+0096, a cp1252 dash): those become spaces.
    """
    rows = [json.loads(line) for line in path.read_text().splitlines()[:docs] if line.strip()]
    return [
        DocumentEvent(
            doc_id=str(row["_id"]) + (f"#copy{copy}" if copy else ""),
            title=_printable(row.get("title") or ""),
            text=(f"(copy {copy}) " if copy else "") + _printable(row["text"]),
        )
        for copy in range(copies)
        for row in rows
    ]


def _printable(text: str) -> str:
    return "".join(" " if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" else ch for ch in text)


def stage_counters(port: int) -> dict[str, float]:
    """One worker's batch seconds, batches and messages finished (ok), read from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    counters = {"busy_s": 0.0, "batches": 0.0, "messages": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ragbus_stage_batch_seconds_sum":
                counters["busy_s"] += sample.value
            elif sample.name == "ragbus_stage_batch_seconds_count":
                counters["batches"] += sample.value
            elif sample.name == "ragbus_stage_messages_total" and sample.labels.get("outcome") == "ok":
                counters["messages"] += sample.value
    return counters


def per_stage(
    workers: list[ManagedProcess],
    ports: dict[str, int],
    before: dict[str, dict[str, float]],
    chunks: int,
    wall_s: float,
) -> dict[str, dict[str, float]]:
    """Each stage's share of the run: busy seconds (all replicas), busy share per replica, chunks per busy second."""
    stages: dict[str, dict[str, float]] = {}
    for worker in workers:
        stage = worker.name.rstrip("0123456789")
        after = stage_counters(ports[worker.name])
        row = stages.setdefault(stage, {"replicas": 0, "busy_s": 0.0, "batches": 0, "documents": 0})
        row["replicas"] += 1
        for key, name in (("busy_s", "busy_s"), ("batches", "batches"), ("documents", "messages")):
            row[key] += after[name] - before[worker.name][name]
    for row in stages.values():
        row["busy_share"] = round(row["busy_s"] / (row["replicas"] * wall_s), 3)
        row["chunks_per_busy_s"] = round(chunks / row["busy_s"], 1) if row["busy_s"] else 0.0
        row["busy_s"] = round(row["busy_s"], 2)
    return {stage: stages[stage] for stage in STAGES if stage in stages}


def run(args: argparse.Namespace) -> dict[str, object]:
    """One measurement; returns the result record."""
    events = corpus(args.corpus, args.docs, args.copies)
    names = [f"{stage}{r or ''}" for stage in STAGES for r in range(args.embedders if stage == "embedder" else 1)]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    own_env = {name: {"RAGBUS_WORKER_METRICS_PORT": str(port)} for name, port in ports.items()}
    scaled = {"RAGBUS_KAFKA_PARTITIONS": str(2 * args.embedders)} if args.embedders > 1 else {}
    with bench_stack(args.engine) as (env, settings, home):
        workers = start_workers({**env, **scaled, **NULL_EMBEDDINGS}, home, embedders=args.embedders, own_env=own_env)
        try:
            before = {name: stage_counters(port) for name, port in ports.items()}
            cpu_before, load_before = process_cpu(), os.getloadavg()[0]
            wall_s, publish_s = asyncio.run(index_timed(settings, events))
            cpu = {name: round(used - cpu_before.get(name, 0.0), 1) for name, used in process_cpu().items()}
            store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
            try:
                chunks = store.count_chunks()
            finally:
                store.close()
            stages = per_stage(workers, ports, before, chunks, wall_s)
            for stage, row in stages.items():  # CPU is the steadier measure where other jobs share the cores
                row["cpu_s"] = cpu.get(f"ragbus worker {stage}", 0.0)
                row["chunks_per_cpu_s"] = round(chunks / row["cpu_s"], 1) if row["cpu_s"] else 0.0
        finally:
            stop_all(workers, timeout_s=10)
    first = max(stages, key=lambda stage: stages[stage]["busy_share"])
    return {
        "benchmark": "pipeline_ceiling",
        "engine": args.engine,
        "embedding_backend": "bench-null (no model: the pipeline's ceiling, not an ingest figure)",
        "documents": len(events),
        "copies": args.copies,
        "chunks": chunks,
        "seconds": round(wall_s, 2),
        "chunks_per_s": round(chunks / wall_s, 1),
        "publish_seconds": round(publish_s, 2),
        "embedder_processes": args.embedders,
        "stages": stages,
        "stops_first": first,
        "stops_first_why": f"{first} was busy {stages[first]['busy_share']:.0%} of the run per replica; "
        "the other stages waited on it",
        # Where the machine's CPU went (the machine's shared Redis is not a child of this process: absent).
        "cpu_seconds": dict(sorted(cpu.items(), key=lambda item: -item[1])),
        "cores": os.cpu_count(),
        # Other jobs on the machine: a 1-minute load average above the core count means the figures are low.
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=ENGINES, default="milvus-lite")
    parser.add_argument("--docs", type=int, default=5183, help="SciFact abstracts (5,183 = 11,338 chunks)")
    parser.add_argument("--copies", type=int, default=1, help="copies of each abstract, each new content")
    parser.add_argument("--embedders", type=int, default=1, help="embedder processes")
    parser.add_argument("--corpus", type=Path, default=SCIFACT, help="SciFact's corpus.jsonl")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    suffix = "" if args.engine == "milvus-lite" else f"-{args.engine}"
    out = args.out or ROOT / "bench" / "results" / f"pipeline-ceiling{suffix}.json"
    result = run(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_result(result, out, "stages")
    print(json.dumps({k: result[k] for k in ("chunks", "seconds", "chunks_per_s", "stops_first")}, indent=1))


if __name__ == "__main__":
    main()
