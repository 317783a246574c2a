"""How the embedder groups a consumer batch into model calls: fixed groups of the batch size against planned ones.

    python -m bench.model_batches [--share 16] [--rounds 3]

Takes every `share`-th SciFact document (by a hash of its id, as a partition would), chunks it as the chunker does,
and encodes the chunks with one model thread, as one embedder of `--embedders 2 --embed-threads 1` does, four ways
in alternation (so a change in the machine's speed hits all four):
- `one call`: the whole share in one `encode` call (sorted by length over everything, then the batch size): the
  raw encode of `bench.ingest`, which no stream can do;
- `sorted by tokens`: the whole share sorted by token count and cut every 64: the least padding fixed groups can
  have, a stricter raw baseline than `encode`, which sorts by characters;
- `fixed groups`: each consumer batch of 128 documents sorted longest first (by characters) and cut every 64
  chunks: the embedder before 27 Nov evening;
- `planned`: each consumer batch cut by `plan_model_batches`: the embedder now.
Reports CPU seconds per round and the padded tokens of each. Writes bench/results/model-batches.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from bench.stack import ROOT, SCIFACT, save_result
from producers.sources.files import read_documents
from ragbus.embedding import ModelTokenizer, SentenceEmbedder
from ragbus.settings import load_settings
from workers.chunker.chunking import TokenChunker
from workers.embedder.batching import plan_model_batches

RECORDS_PER_BATCH = 128  # RAGBUS_WORKER_MAX_RECORDS


def _fixed(texts: list[str], size: int) -> list[list[int]]:
    # As the embedder did: longest first by characters (as sentence-transformers sorts), then every `size`.
    order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), texts[i]))
    return [order[i : i + size] for i in range(0, len(order), size)]


def run(share: int, rounds: int) -> dict[str, object]:
    """One measurement; returns the result record."""
    settings = load_settings()
    embedding = settings.embedding.model_copy(update={"threads": 1})
    chunker = TokenChunker(ModelTokenizer.from_settings(embedding), settings.chunking)
    events = [e for e in read_documents([SCIFACT]) if zlib.crc32(e.doc_id.encode()) % share == 0]
    docs = [chunker.chunk(e) for e in events]
    batches = [
        [(d.embedding_input(c), c.token_count) for d in docs[i : i + RECORDS_PER_BATCH] for c in d.chunks]
        for i in range(0, len(docs), RECORDS_PER_BATCH)
    ]
    everything = [item for batch in batches for item in batch]
    size = embedding.batch_size

    def calls(plan: Callable[[list[tuple[str, int]]], list[list[int]]]) -> list[list[tuple[str, int]]]:
        return [[batch[i] for i in group] for batch in batches for group in plan(batch)]

    by_tokens = sorted(everything, key=lambda item: -item[1])
    ways = {
        "one call": [everything],
        "sorted by tokens": [by_tokens[i : i + size] for i in range(0, len(by_tokens), size)],
        "fixed groups": calls(lambda batch: _fixed([t for t, _ in batch], size)),
        "planned": calls(lambda batch: plan_model_batches([n for _, n in batch], size)),
    }
    embedder = SentenceEmbedder(embedding).load()
    embedder.encode([t for t, _ in everything[:size]], check_length=False)  # warm-up
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(rounds):
        for way, groups in ways.items():
            started = time.process_time()
            for group in groups:
                embedder.encode([t for t, _ in group], check_length=False)
            cpu[way].append(round(time.process_time() - started, 2))
    needed = sum(n for _, n in everything)
    # The model's own calls: "one call" is cut inside `encode`, sorted by characters as sentence-transformers does.
    one_call = sorted(everything, key=lambda item: -len(item[0]))
    model_calls = {**ways, "one call": [one_call[i : i + size] for i in range(0, len(one_call), size)]}
    padded = {way: sum(len(g) * max(n for _, n in g) for g in groups) for way, groups in model_calls.items()}
    base = statistics.median(cpu["one call"])
    return {
        "benchmark": "model_batches",
        "documents": len(docs),
        "chunks": len(everything),
        "tokens_needed": needed,
        "batch_size": size,
        "model_threads": 1,
        "results": {
            way: {
                "model_calls": len(model_calls[way]),
                "padded_tokens": padded[way],
                "padding_over_needed": round(padded[way] / needed - 1, 4),
                "cpu_seconds_by_round": cpu[way],
                "median_cpu_over_one_call": round(statistics.median(cpu[way]) / base, 3),
            }
            for way in ways
        },
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--share", type=int, default=16, help="take one document in this many")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "model-batches.json")
    args = parser.parse_args()
    save_result(run(args.share, args.rounds), args.out, "results")


if __name__ == "__main__":
    main()
