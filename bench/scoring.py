"""Retrieval metrics (BEIR/pytrec_eval definitions) and latency percentiles."""

from __future__ import annotations

import math
from collections.abc import Sequence


def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """nDCG@k with graded gains rel / log2(rank + 1), as trec_eval computes it."""
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """Share of the relevant documents found in the first k."""
    wanted = {doc for doc, grade in relevant.items() if grade > 0}
    return len(wanted & set(ranked[:k])) / len(wanted) if wanted else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {f"p{q}_ms": round(percentile(ms, q), 2) for q in (50, 95, 99)} | {"max_ms": round(max(ms), 2)}
