"""Hybrid retrieval on SciFact: BM25 (Milvus full-text search) + dense, fused by reciprocal rank fusion.

    python -m bench.hybrid

Run only where the server does BM25 (`bench.hybrid_probe` asks it first; milvus-lite 3.2 does, the Milvus 2.3
engine predates the BM25 function). Same setting as the dataset README's reference: each document whole (title +
" " + text; the model truncates at 256 word pieces, BM25 sees all of it), dense searched exactly (FLAT, cosine).
Reports nDCG@10 and recall@100 of dense alone, BM25 alone and RRF(k=60) of both. This measures the retrieval
method on its own milvus-lite; the query API does not use it yet. Writes bench/results/hybrid.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pymilvus import AnnSearchRequest, DataType, Function, FunctionType, MilvusClient, RRFRanker

from bench.hybrid_probe import probe_bm25
from bench.scifact import SciFact, load_scifact
from bench.stack import ROOT
from ragbus.embedding import SentenceEmbedder
from ragbus.ranking_metrics import ndcg_at_k, recall_at_k
from ragbus.settings import EmbeddingSettings
from ragbus.stack.process import free_port, stop_all
from ragbus.stack.servers import start_milvus_lite

COLLECTION = "scifact_hybrid"
DEPTH = 100


def _create(client: MilvusClient, dim: int) -> None:
    schema = client.create_schema(auto_id=False)
    schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("text", DataType.VARCHAR, max_length=65535, enable_analyzer=True)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]
        )
    )
    index = client.prepare_index_params()
    index.add_index(field_name="dense", index_type="FLAT", metric_type="COSINE")
    index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(COLLECTION, schema=schema, index_params=index, consistency_level="Strong")


def _score(
    data: SciFact, rank: Callable[[str, list[float]], list[str]], vectors: dict[str, list[float]]
) -> dict[str, float]:
    ndcg, recall = [], []
    for query_id, text in data.queries.items():
        ranked = rank(text, vectors[query_id])
        ndcg.append(ndcg_at_k(ranked, data.qrels[query_id], 10))
        recall.append(recall_at_k(ranked, data.qrels[query_id], DEPTH))
    return {"ndcg_at_10": round(sum(ndcg) / len(ndcg), 4), "recall_at_100": round(sum(recall) / len(recall), 4)}


def run(docs: int | None = None, queries: int | None = None) -> dict[str, object]:
    """One measurement; returns the result record."""
    data = load_scifact(docs, queries)
    embedder = SentenceEmbedder(EmbeddingSettings()).load()
    texts = [f"{d.title} {d.text}".strip() for d in data.documents]
    doc_vectors = embedder.encode(texts, check_length=False)
    query_vectors = dict(zip(data.queries, embedder.encode(list(data.queries.values())).tolist(), strict=True))
    home, port = Path(tempfile.mkdtemp(prefix="ragbus-hybrid-")), free_port()
    server = start_milvus_lite(home, port)
    try:
        uri = f"http://127.0.0.1:{port}"
        probe = probe_bm25(uri)
        if not probe["supported"]:
            return {"benchmark": "hybrid", "supported": False, "probe": probe}
        client = MilvusClient(uri=uri, timeout=120)
        _create(client, embedder.dim)
        rows = [
            {"doc_id": d.doc_id, "text": t[:60000], "dense": v.tolist()}
            for d, t, v in zip(data.documents, texts, doc_vectors, strict=True)
        ]
        for start in range(0, len(rows), 500):
            client.insert(COLLECTION, rows[start : start + 500])

        def ids(hits: list[list[dict[str, object]]]) -> list[str]:
            return [str(h["doc_id"]) for h in hits[0]]

        def dense(text: str, vector: list[float]) -> list[str]:
            return ids(client.search(COLLECTION, data=[vector], anns_field="dense", limit=DEPTH))

        def bm25(text: str, vector: list[float]) -> list[str]:
            return ids(client.search(COLLECTION, data=[text], anns_field="sparse", limit=DEPTH))

        def hybrid(text: str, vector: list[float]) -> list[str]:
            requests = [
                AnnSearchRequest(data=[vector], anns_field="dense", param={}, limit=DEPTH),
                AnnSearchRequest(data=[text], anns_field="sparse", param={}, limit=DEPTH),
            ]
            return ids(client.hybrid_search(COLLECTION, requests, RRFRanker(60), limit=DEPTH))

        scores = {
            name: _score(data, fn, query_vectors) for name, fn in (("dense", dense), ("bm25", bm25), ("rrf", hybrid))
        }
        client.close()
    finally:
        stop_all([server], timeout_s=10)
    return {
        "benchmark": "hybrid",
        "supported": True,
        "probe": probe,
        "documents": len(texts),
        "queries": len(data.queries),
        "rrf_k": 60,
        "results": scores,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=None, help="documents (default: all 5,183)")
    parser.add_argument("--queries", type=int, default=None, help="judged test queries (default: all 300)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hybrid.json")
    args = parser.parse_args()
    result = run(args.docs, args.queries)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
