"""Ranking quality of one query's ranked documents against its judgments (BEIR / pytrec_eval definitions)."""

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


def reciprocal_rank_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """1 / the rank of the first relevant document within the first k (0 when there is none): MRR@k's term."""
    return next((1.0 / rank for rank, doc in enumerate(ranked[:k], 1) if relevant.get(doc, 0) > 0), 0.0)
