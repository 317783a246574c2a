"""Latency percentiles (retrieval metrics are ragbus's own: ragbus.ranking_metrics)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {f"p{q}_ms": round(percentile(ms, q), 2) for q in (50, 95, 99)} | {"max_ms": round(max(ms), 2)}
