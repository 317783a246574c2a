"""Retrieval quality through the REST API: nDCG@10 and recall@100 of SciFact's test queries.

A document's rank is that of its best passage (the API returns passages; repeated documents are dropped).
"""

from __future__ import annotations

import time

import httpx

from bench.scifact import SciFact
from bench.scoring import ndcg_at_k, recall_at_k

PASSAGES = 300  # enough to rank 100 distinct documents (SciFact abstracts make about 2 passages each)


def ranked_documents(client: httpx.Client, query: str, passages: int = PASSAGES) -> list[str]:
    """Document ids in the order of their best passage, as the API ranks them."""
    response = client.post("/v1/query", json={"query": query, "top_k": passages}, timeout=60)
    response.raise_for_status()
    return list(dict.fromkeys(c["doc_id"] for c in response.json()["citations"]))


def evaluate(client: httpx.Client, data: SciFact, passages: int = PASSAGES) -> dict[str, object]:
    """Ask every query once (cold cache) and score the rankings against the qrels."""
    ndcg, recall, depth = [], [], []
    started = time.perf_counter()
    for query_id, text in data.queries.items():
        ranked = ranked_documents(client, text, passages)
        ndcg.append(ndcg_at_k(ranked, data.qrels[query_id], 10))
        recall.append(recall_at_k(ranked, data.qrels[query_id], 100))
        depth.append(len(ranked))
    n = len(ndcg)
    return {
        "queries": n,
        "documents": len(data.documents),
        "ndcg_at_10": round(sum(ndcg) / n, 4),
        "recall_at_100": round(sum(recall) / n, 4),
        "passages_asked": passages,
        "min_distinct_documents_ranked": min(depth),
        "seconds": round(time.perf_counter() - started, 2),
    }
