"""The query API's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUERIES = Counter("ragbus_queries_total", "Queries answered.", ["cached", "degraded"])
QUERY_SECONDS = Histogram(
    "ragbus_query_duration_seconds",
    "End-to-end query time.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
ERRORS = Counter("ragbus_errors_total", "Query failures by type.", ["type"])
RETRIEVAL_SECONDS = Histogram(
    "ragbus_retrieval_latency_seconds",
    "Embedding plus vector search time.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
LLM_SECONDS = Histogram("ragbus_llm_latency_seconds", "LLM completion time.", buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
BREAKER_STATE = Gauge(
    "ragbus_breaker_state", "Circuit breaker per dependency: 0 closed, 1 half-open, 2 open.", ["name"]
)
CACHE_LOOKUPS = Counter("ragbus_query_cache_total", "Query cache lookups by outcome.", ["outcome"])
CACHE_INVALIDATIONS = Counter("ragbus_cache_invalidations_total", "Cache-invalidation events applied, by op.", ["op"])
CACHE_INVALIDATION_LAG = Gauge(
    "ragbus_cache_invalidation_lag", "Cache-invalidation events on this API process's partitions not applied yet."
)
CACHE_ENTRIES_DROPPED = Counter("ragbus_cache_entries_invalidated_total", "Cached answers deleted by invalidation.")
SINGLE_FLIGHT_SHARED = Counter("ragbus_single_flight_shared_total", "Misses answered by another caller's computation.")
REPLICA_FAILOVERS = Counter(
    "ragbus_replica_failovers_total",
    "Searches and alias lookups that failed on a replica (the next one is tried).",
    ["replica"],
)
LLM_FAILURES = Counter("ragbus_llm_failures_total", "LLM calls that failed after retries, by provider.", ["provider"])

# --- security and feedback (issue #5 security, issue #6 seed metrics) ---------------------------------------
PROMPT_INJECTION = Counter(
    "ragbus_prompt_injection_flagged_total",
    "Queries that look like prompt-injection attempts (served, flagged).",
    ["pattern"],
)
PRECISION_AT_5 = Gauge(
    "ragbus_precision_at_5",
    "Running mean of precision@5 over a tenant's queries whose feedback named the relevant documents.",
    ["tenant"],
)
THUMBS_UP_RATE = Gauge("ragbus_thumbs_up_rate", "Running share of thumbs-up among a tenant's feedback.", ["tenant"])
FEEDBACK = Counter("ragbus_feedback_total", "Feedback received, by vote.", ["vote"])
