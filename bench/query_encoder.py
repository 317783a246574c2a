"""How long the query API takes to encode one question, with each embedding backend, and how close the vectors are.

    python -m bench.query_encoder [--questions 300] [--rounds 3] [--batch-docs 384]

The SciFact test questions, one per call as the API encodes them, by torch (sentence-transformers) and by the model
exported to ONNX at full precision (`RAGBUS_EMBED_BACKEND=onnx`, what `RAGBUS_API_QUERY_BACKEND=auto` picks for an
index of torch vectors), alternating round by round in one process so machine load hits both. Also the largest
difference between the two backends' vectors of every question, and, for the workers' side, texts/s of each backend
over the first `--batch-docs` abstracts (title and text) at RAGBUS_EMBED_BATCH_SIZE, alternating. Writes
bench/results/query-encoder.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.scifact import load_scifact
from bench.scoring import summary_ms
from bench.stack import ROOT, save_result
from ragbus.embedding import SentenceEmbedder
from ragbus.settings import EmbeddingSettings

BACKENDS = ("torch", "onnx")


def time_each_question(
    encoders: dict[str, SentenceEmbedder], questions: list[str], rounds: int
) -> dict[str, list[float]]:
    """Seconds of each one-question call, per encoder: every question once a round, the encoders taking turns in an
    order that alternates round by round, so machine load hits each alike."""
    names = list(encoders)
    took: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds):
        for name in names if round_no % 2 == 0 else reversed(names):
            for question in questions:
                began = time.perf_counter()
                encoders[name].encode([question], check_length=False)
                took[name].append(time.perf_counter() - began)
    return took


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-docs", type=int, default=384, help="abstracts of the batch comparison (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "query-encoder.json")
    args = parser.parse_args()
    data = load_scifact(None, None)
    questions = list(data.queries.values())[: args.questions]
    abstracts = [f"{d.title} {d.text}".strip() for d in data.documents[: args.batch_docs]]
    with tempfile.TemporaryDirectory() as exports:
        started = time.perf_counter()
        embedders = {
            name: SentenceEmbedder(EmbeddingSettings(backend=name, onnx_cache_dir=Path(exports))).load()
            for name in BACKENDS
        }
        loaded_s = time.perf_counter() - started
        vectors = {name: e.encode(questions, check_length=False) for name, e in embedders.items()}
        took = time_each_question(embedders, questions, args.rounds)
        texts_per_s: dict[str, list[float]] = {name: [] for name in BACKENDS}
        for round_no in range(args.rounds if abstracts else 0):
            for name in BACKENDS if round_no % 2 == 0 else reversed(BACKENDS):
                began = time.perf_counter()
                embedders[name].encode(abstracts, check_length=False)
                texts_per_s[name].append(round(len(abstracts) / (time.perf_counter() - began), 1))
    summaries = {name: summary_ms(values) | {"calls": len(values)} for name, values in took.items()}
    result = {
        "benchmark": "query_encoder",
        "one_question": summaries,
        "p50_torch_over_onnx": round(summaries["torch"]["p50_ms"] / summaries["onnx"]["p50_ms"], 2),
        "max_abs_difference": float(np.abs(vectors["onnx"] - vectors["torch"]).max()),
        "min_cosine": float((vectors["onnx"] * vectors["torch"]).sum(axis=1).min()),
        "both_loaded_and_exported_s": round(loaded_s, 1),
        "batch_texts_per_s": texts_per_s,
        "batch_docs": len(abstracts),
        "batch_size": embedders["torch"].settings.batch_size,
        "questions": len(questions),
        "rounds": args.rounds,
    }
    save_result(result, args.out, "one_question")


if __name__ == "__main__":
    main()
