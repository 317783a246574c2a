"""Retrieval quality through the REST API: nDCG@10 and recall@100 of SciFact's test queries.

The figures are ragbus's own (`ragbus.evaluation`, the code behind `ragbus eval`): a document's rank is that of its
best passage (the API returns passages; repeated documents are dropped).
"""

from __future__ import annotations

import time

import httpx

from bench.scifact import SciFact
from ragbus.evaluation import PASSAGES
from ragbus.evaluation import evaluate as evaluate_rankings
from ragbus.judged_set import JudgedSet


def ranked_documents(client: httpx.Client, query: str, passages: int = PASSAGES) -> list[str]:
    """Document ids in the order of their best passage, as the API ranks them."""
    response = client.post("/v1/query", json={"query": query, "top_k": passages}, timeout=60)
    response.raise_for_status()
    return list(dict.fromkeys(c["doc_id"] for c in response.json()["citations"]))


def evaluate(client: httpx.Client, data: SciFact, passages: int = PASSAGES) -> dict[str, object]:
    """Ask every query once (cold cache) and score the rankings against the qrels."""
    started = time.perf_counter()
    judged = JudgedSet("scifact", data.queries, data.qrels)
    report = evaluate_rankings(judged, lambda query: ranked_documents(client, query, passages), str(client.base_url))
    summary = report.summary()
    return {
        "queries": summary["queries"],
        "documents": len(data.documents),
        "ndcg_at_10": summary["ndcg_at_10"],
        "recall_at_100": summary["recall_at_100"],
        "passages_asked": passages,
        "min_distinct_documents_ranked": summary["min_documents_ranked"],
        "seconds": round(time.perf_counter() - started, 2),
    }
