"""The ONNX Runtime int8 embedding backend against torch: speed on the same texts, and SciFact quality.

    python -m bench.onnx_backend [--speed-docs N]

Quality is measured as the dataset README's reference is: each document embedded whole (title + " " + text,
truncated to 256 word pieces) and searched exactly by cosine similarity, once with each backend, so the nDCG
change is the backend's alone (the torch row reproduces the published 0.6451). Speed: the same documents
encoded by each backend in alternation (torch, onnx, torch, onnx) in one process, so machine load hits both.
Writes bench/results/onnx.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from bench.scifact import load_scifact
from bench.stack import ROOT
from ragbus.embedding import SentenceEmbedder
from ragbus.ranking_metrics import ndcg_at_k, recall_at_k
from ragbus.settings import EmbeddingSettings


def _quality(
    embedder: SentenceEmbedder,
    docs: list[str],
    ids: list[str],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
) -> dict[str, object]:
    started = time.perf_counter()
    matrix = embedder.encode(docs, check_length=False)
    encode_s = time.perf_counter() - started
    asked = embedder.encode(list(queries.values()), check_length=False)
    ndcg, recall = [], []
    for query_id, vector in zip(queries, asked, strict=True):
        top = np.argsort(-(matrix @ vector))[:100]
        ranked = [ids[i] for i in top]
        ndcg.append(ndcg_at_k(ranked, qrels[query_id], 10))
        recall.append(recall_at_k(ranked, qrels[query_id], 100))
    return {
        "ndcg_at_10": round(sum(ndcg) / len(ndcg), 4),
        "recall_at_100": round(sum(recall) / len(recall), 4),
        "corpus_encode_seconds": round(encode_s, 2),
    }


def _docs_per_s(embedder: SentenceEmbedder, texts: list[str]) -> float:
    started = time.perf_counter()
    embedder.encode(texts, check_length=False)
    return len(texts) / (time.perf_counter() - started)


def run(speed_docs: int) -> dict[str, object]:
    """One measurement; returns the result record."""
    data = load_scifact()
    texts = [f"{d.title} {d.text}".strip() for d in data.documents]
    ids = [d.doc_id for d in data.documents]
    backends = {name: SentenceEmbedder(EmbeddingSettings(backend=name)).load() for name in ("torch", "onnx-int8")}
    sample = texts[:speed_docs]
    for embedder in backends.values():
        embedder.encode(sample[:32], check_length=False)  # warm-up
    speed: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(2):
        for name, embedder in backends.items():
            speed[name].append(_docs_per_s(embedder, sample))
    best = {name: max(values) for name, values in speed.items()}
    quality = {name: _quality(e, texts, ids, data.queries, data.qrels) for name, e in backends.items()}
    return {
        "benchmark": "onnx_backend",
        "documents": len(texts),
        "queries": len(data.queries),
        "speed_sample_documents": len(sample),
        "docs_per_s": {name: [round(v, 1) for v in values] for name, values in speed.items()},
        "speedup_onnx_over_torch": round(best["onnx-int8"] / best["torch"], 2),
        "whole_document_exact_search": quality,
        "ndcg_change": round(float(quality["onnx-int8"]["ndcg_at_10"]) - float(quality["torch"]["ndcg_at_10"]), 4),  # type: ignore[arg-type]
        "batch_size": backends["torch"].settings.batch_size,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed-docs", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "onnx.json")
    args = parser.parse_args()
    result = run(args.speed_docs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
