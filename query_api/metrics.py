"""The query API's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

QUERIES = Counter("rag_queries_total", "Queries answered.", ["cached", "degraded"])
QUERY_SECONDS = Histogram(
    "rag_query_duration_seconds",
    "End-to-end query time.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
ERRORS = Counter("rag_errors_total", "Query failures by type.", ["type"])
RETRIEVAL_SECONDS = Histogram(
    "rag_retrieval_latency_seconds",
    "Embedding plus vector search time.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
LLM_SECONDS = Histogram("rag_llm_latency_seconds", "LLM completion time.", buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
