"""What int8 question vectors cost in retrieval quality against an index of float vectors, and what they save.

    python -m bench.question_int8 [--vectors .ragbus/bench/scifact-chunks-fp32.npy] [--rounds 3]

SciFact's corpus is chunked as the pipeline chunks it and embedded once at full precision (the ONNX export, which
gives torch's vectors), as the workers index it by default; the matrix is kept at `--vectors` for the next run.
The 300 test questions are then encoded one per call, as the query API encodes them, by the full-precision export
(RAGBUS_API_QUERY_BACKEND=onnx, what auto picks) and by the int8 one (onnx-int8), one thread each, alternating round
by round. Each question's documents are ranked by exact dense search over every chunk (a document at the rank of its
best chunk), so the figures are the question encoder's alone, not an index's approximation: nDCG@10, recall@10 and
@100 of both, per-question nDCG differences, how many of the top 10 documents agree, the cosine of each question's
two vectors, and ms per question. Writes bench/results/question-int8.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from bench.query_encoder import time_each_question
from bench.scifact import load_scifact
from bench.scoring import summary_ms
from bench.stack import ROOT, save_result
from ragbus.embedding import ModelTokenizer, SentenceEmbedder
from ragbus.ranking_metrics import ndcg_at_k, recall_at_k
from ragbus.settings import EmbeddingSettings, load_settings
from schemas.extracted import plain_text_document
from workers.chunker.chunking import TokenChunker
from workers.extractor.cache import EXTRACTOR_VERSION

QUESTION_BACKENDS = ("onnx", "onnx-int8")


def chunk_corpus() -> tuple[list[str], list[str]]:
    """Every SciFact chunk's embedding input and its document id, as the pipeline makes them."""
    settings = load_settings()
    chunker = TokenChunker(ModelTokenizer.from_settings(settings.embedding), settings.chunking)
    texts: list[str] = []
    owners: list[str] = []
    for event in load_scifact().documents:
        chunked = chunker.chunk(plain_text_document(event, EXTRACTOR_VERSION))
        for chunk in chunked.chunks:
            texts.append(chunked.embedding_input(chunk))
            owners.append(chunked.doc_id)
    return texts, owners


def chunk_vectors(texts: list[str], cache: Path, exports: Path) -> np.ndarray:
    """The chunks' full-precision vectors: from `cache` when it holds as many rows, else encoded and saved there."""
    if cache.exists():
        kept = np.load(cache)
        if kept.shape[0] == len(texts):
            return kept
    embedder = SentenceEmbedder(EmbeddingSettings(backend="onnx", onnx_cache_dir=exports, batch_size=64)).load()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(order), 64):
        rows = order[start : start + 64]
        vectors[rows] = embedder.encode([texts[i] for i in rows], check_length=False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors)
    return vectors


def rank_documents(question: np.ndarray, chunks: np.ndarray, owners: np.ndarray, depth: int = 100) -> list[str]:
    """Document ids by their best chunk's cosine, best first (exact search)."""
    scores = chunks @ question
    ranked: list[str] = []
    for row in np.argsort(-scores):
        doc = str(owners[row])
        if doc not in ranked:
            ranked.append(doc)
            if len(ranked) == depth:
                break
    return ranked


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=Path, default=ROOT / ".ragbus" / "bench" / "scifact-chunks-fp32.npy")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "question-int8.json")
    args = parser.parse_args()
    data = load_scifact()
    texts, owner_list = chunk_corpus()
    owners = np.asarray(owner_list)
    exports = ROOT / ".ragbus" / "onnx"
    started = time.perf_counter()
    chunks = chunk_vectors(texts, args.vectors, exports)
    chunks_s = time.perf_counter() - started
    encoders = {
        name: SentenceEmbedder(EmbeddingSettings(backend=name, onnx_cache_dir=exports, threads=1)).load()
        for name in QUESTION_BACKENDS
    }
    ids = list(data.queries)
    questions = [data.queries[q] for q in ids]
    vectors = {name: np.vstack([e.encode([q], check_length=False) for q in questions]) for name, e in encoders.items()}
    took = time_each_question(encoders, questions, args.rounds)
    rankings = {
        name: [rank_documents(vectors[name][i], chunks, owners) for i in range(len(ids))] for name in QUESTION_BACKENDS
    }
    quality: dict[str, dict[str, float]] = {}
    per_question: dict[str, list[float]] = {}
    for name in QUESTION_BACKENDS:
        ndcg = [ndcg_at_k(r, data.qrels[q], 10) for q, r in zip(ids, rankings[name], strict=True)]
        per_question[name] = ndcg
        quality[name] = {
            "ndcg_at_10": round(statistics.fmean(ndcg), 4),
            "recall_at_10": round(
                statistics.fmean(recall_at_k(r, data.qrels[q], 10) for q, r in zip(ids, rankings[name], strict=True)), 4
            ),
            "recall_at_100": round(
                statistics.fmean(recall_at_k(r, data.qrels[q], 100) for q, r in zip(ids, rankings[name], strict=True)),
                4,
            ),
        }
    differences = [b - a for a, b in zip(per_question["onnx"], per_question["onnx-int8"], strict=True)]
    agree = [len(set(a[:10]) & set(b[:10])) for a, b in zip(rankings["onnx"], rankings["onnx-int8"], strict=True)]
    cosines = np.sum(vectors["onnx"] * vectors["onnx-int8"], axis=1)
    result = {
        "questions": len(ids),
        "chunks": len(texts),
        "documents": len(data.documents),
        "chunk_vectors_s": round(chunks_s, 1),
        "quality": quality,
        "ndcg_at_10_difference": {
            "int8_minus_float": round(quality["onnx-int8"]["ndcg_at_10"] - quality["onnx"]["ndcg_at_10"], 4),
            "questions_better": sum(d > 1e-9 for d in differences),
            "questions_worse": sum(d < -1e-9 for d in differences),
            "largest_drop": round(min(differences), 4),
        },
        "top10_documents_shared": {"mean": round(statistics.fmean(agree), 2), "min": min(agree)},
        "question_cosine": {"mean": round(float(cosines.mean()), 4), "min": round(float(cosines.min()), 4)},
        "ms_per_question": {name: summary_ms(took[name]) for name in QUESTION_BACKENDS},
    }
    save_result(result, args.out, "quality")


if __name__ == "__main__":
    main()
