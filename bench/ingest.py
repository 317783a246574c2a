"""Ingestion throughput: SciFact through the whole pipeline vs the embedding model alone on the same chunks.

    python -m bench.ingest [--docs N] [--embedders N --embed-threads T]

Starts its own tansu (memory), milvus-lite and uses Redis (machine's or its own), runs the three workers as
processes, publishes N SciFact abstracts, and times until every one is searchable. Right before and right after,
in the same run, it encodes the very same chunk texts with `SentenceEmbedder.encode`, sorted by tokens into calls of
the same batch size (the model at its best), in as many processes of as many model threads as the pipeline's
embedders. Writes bench/results/ingest.json.
The embedding cache namespace is fresh, so the pipeline embeds everything (cold).

With --embedders 2 --embed-threads 1 the pipeline runs two embedder processes of one model thread each (on
four partitions) instead of one using every core, and the raw encode runs two such processes on half the texts
each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import queue
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from bench.stack import ROOT, SCIFACT, bench_stack, ingest, process_cpu, start_workers
from producers.sources.files import read_documents
from ragbus.embedding import ModelTokenizer, SentenceEmbedder
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import EmbeddingSettings
from ragbus.stack.process import stop_all
from workers.chunker.chunking import TokenChunker


def token_sorted_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices of texts of `lengths` tokens, longest first, in calls of `batch_size`: the model at its best, every
    call padded only to texts of almost its own length (the pipeline cannot sort a whole corpus it has not seen)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def char_sorted_batches(texts: list[str], batch_size: int) -> list[list[int]]:
    """What sentence-transformers' `encode` does with one list: longest in characters first."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def padding(lengths: list[int], batches: list[list[int]]) -> float:
    """Tokens the calls compute (each input padded to its call's longest) over the tokens of the inputs, minus 1."""
    computed = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return computed / sum(lengths) - 1


def _encode_share(
    texts: list[str], settings: EmbeddingSettings, start: Barrier, results: Queue[tuple[float, float]]
) -> None:
    """One raw encoder process: load the model, warm it up, wait for the others, encode its share in token-sorted
    calls of the configured batch size; report the time."""
    embedder = SentenceEmbedder(settings).load()
    embedder.encode(texts[:64], check_length=False)  # warm-up
    calls = token_sorted_batches(embedder.token_lengths(texts), settings.batch_size)
    start.wait(timeout=600)  # a sibling that failed to load breaks the barrier instead of leaving this one waiting
    wall, cpu = time.perf_counter(), time.process_time()
    for call in calls:
        embedder.encode([texts[i] for i in call], check_length=False)
    results.put((time.perf_counter() - wall, time.process_time() - cpu))


def raw_encode(texts: list[str], settings: EmbeddingSettings, processes: int) -> dict[str, float]:
    """The model alone on `texts`: `processes` processes of `settings.threads` each, as the pipeline's embedders.

    Each process takes every `processes`-th text (the same mix of lengths), sorts its share by tokens and encodes it
    in calls of the configured batch size; all start together after loading and warming up (tokenizing the share
    to sort it is not timed). Seconds: the slowest process.
    """
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_encode_share, args=(texts[i::processes], settings, start, results))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        timings: list[tuple[float, float]] = []
        while len(timings) < processes:
            try:
                timings.append(results.get(timeout=5))
            except queue.Empty:
                failed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                if failed:
                    raise RuntimeError(f"a raw encoder process failed (exit codes {failed})") from None
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.terminate()
    return {"seconds": max(t for t, _ in timings), "cpu_seconds": sum(c for _, c in timings)}


def run(docs: int, embedders: int = 1, embed_threads: int = 0) -> dict[str, object]:
    """One measurement; returns the result record.

    The model alone runs right before and right after the pipeline, and the ratio is taken against the mean of the
    two: this machine's speed drifts by tens of percent within an hour, and a raw encode on one side only carried
    that drift into the ratio (27 Nov: 592 CPU-seconds for the corpus at 15:44, 821 at 17:53).
    """
    scaled = {"RAGBUS_KAFKA_PARTITIONS": str(2 * embedders)} if embedders > 1 else {}
    with bench_stack() as (env, settings, home):
        events = read_documents([SCIFACT])[:docs]
        # The embedding compute the pipeline cannot avoid: the same chunk texts, model, batch size and layout.
        chunker = TokenChunker(ModelTokenizer.from_settings(settings.embedding), settings.chunking)
        chunked = [chunker.chunk(e) for e in events]
        texts = [d.embedding_input(c) for d in chunked for c in d.chunks]
        lengths = [c.token_count for d in chunked for c in d.chunks]
        model = settings.embedding.model_copy(update={"threads": embed_threads} if embed_threads else {})
        raw_before = raw_encode(texts, model, embedders)
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
        raw_after = raw_encode(texts, model, embedders)
    raw_s = (raw_before["seconds"] + raw_after["seconds"]) / 2
    return {
        "benchmark": "ingest",
        "documents": len(events),
        "chunks": chunks,
        "pipeline_seconds": round(pipeline_s, 2),
        "pipeline_docs_per_s": round(len(events) / pipeline_s, 2),
        "pipeline_chunks_per_s": round(chunks / pipeline_s, 2),
        "raw_encode_seconds": round(raw_s, 2),
        "raw_encode_seconds_before_and_after": [round(raw_before["seconds"], 2), round(raw_after["seconds"], 2)],
        "raw_chunks_per_s": round(len(texts) / raw_s, 2),
        "ratio_pipeline_over_raw": round((chunks / pipeline_s) / (len(texts) / raw_s), 3),
        "batch_size": settings.embedding.batch_size,
        # Tokens computed over tokens needed, -1 (each share of a raw process alike; the pipeline's planned calls
        # depend on its consumer batches and are not counted here).
        "raw_padding_token_sorted": round(
            padding(lengths, token_sorted_batches(lengths, settings.embedding.batch_size)), 4
        ),
        "padding_of_one_encode_call_char_sorted": round(
            padding(lengths, char_sorted_batches(texts, settings.embedding.batch_size)), 4
        ),
        "raw_encode_order": "token-sorted calls of batch_size (the model at its best); before 6 Dec: one encode call",
        "embedder_processes": embedders,
        "embedder_threads": embed_threads or os.cpu_count(),
        "raw_encode_layout": f"{embedders} process(es) x {embed_threads or 'default'} thread(s), as the pipeline",
        # Where the machine's CPU went while the pipeline ran (the machine's shared Redis is not a child: absent).
        "pipeline_cpu_seconds": dict(sorted(cpu.items(), key=lambda item: -item[1])),
        "raw_encode_cpu_seconds_before_and_after": [
            round(raw_before["cpu_seconds"], 1),
            round(raw_after["cpu_seconds"], 1),
        ],
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
