"""Prometheus metrics of the pipeline stages and change sources (the API's own metrics live in query_api.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STAGE_MESSAGES = Counter("ragbus_stage_messages_total", "Messages a stage finished, by outcome.", ["stage", "outcome"])
STAGE_BATCH_SECONDS = Histogram(
    "ragbus_stage_batch_seconds",
    "Time to process one batch.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
STAGE_BATCH_SIZE = Histogram(
    "ragbus_stage_batch_size", "Messages per batch.", ["stage"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
STAGE_DEFERRED = Counter(
    "ragbus_stage_deferred_records_total",
    "Polled records left for the next poll because the batch reached RAGBUS_WORKER_MAX_CHUNKS.",
    ["stage"],
)
STAGE_RETRIES = Counter(
    "ragbus_stage_transient_retries_total",
    "Batches retried after a transient failure (backpressure).",
    ["stage"],
)
TRANSIENT_GIVEN_UP = Counter(
    "ragbus_transient_given_up_total",
    "Records dead-lettered after failing transiently RAGBUS_WORKER_MAX_TRANSIENT_ATTEMPTS times while every store "
    "answered (a poison record that looked transient).",
    ["stage"],
)
QUARANTINED = Counter(
    "ragbus_quarantined_total", "Records an operator quarantined (`ragbus dlq quarantine`).", ["stage"]
)
DEAD_LETTERED = Counter("ragbus_dead_lettered_total", "Messages sent to a dead-letter topic.", ["stage", "code"])
EMBEDDING_CACHE = Counter("ragbus_embedding_cache_total", "Embedding cache lookups.", ["result"])
LANE_RECORDS = Counter(
    "ragbus_lane_records_total", "Records a stage processed, by lane (live or bulk).", ["stage", "lane"]
)
LANE_YIELDED = Counter(
    "ragbus_lane_bulk_yielded_total",
    "Polled bulk batches a stage put back to serve live records first (they are polled again).",
    ["stage"],
)
LANE_WAIT_SECONDS = Histogram(
    "ragbus_lane_wait_seconds",
    "From a record's produce time to the start of a stage's batch that takes it (the hop from the stage before and "
    "the wait at this stage's input; a bulk record put back for live ones counts again when taken), by stage and lane.",
    ["stage", "lane"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
LANE_FRESHNESS_SECONDS = Histogram(
    "ragbus_lane_freshness_seconds",
    "From a document event's produce time to its chunks being searchable, by lane.",
    ["lane"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)
FRESHNESS_SECONDS = Histogram(
    "ragbus_freshness_seconds",
    "From a document event's produce time to its chunks being searchable.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800),
)
STALE_EVENTS = Counter("ragbus_stale_events_total", "Events older than the indexed version, ignored.", ["stage"])
EXTRACTIONS = Counter(
    "ragbus_extractor_documents_total",
    "Document events the extractor handled, by how: extracted (parsed an original), cache_hit (reused the text "
    "extracted from the same bytes by the same extractor version), inline (text in the event), delete, superseded.",
    ["outcome"],
)
CONSUMER_LAG = Gauge(
    "ragbus_consumer_lag_messages",
    "Records of the stage's input topic its consumer group has not committed yet, per partition.",
    ["stage", "group", "topic", "partition"],
)
CONSUMER_LAG_ERRORS = Counter(
    "ragbus_consumer_lag_errors_total", "Lag readings that failed (Kafka unreachable).", ["stage"]
)


def register_stage(stage: str) -> None:
    """Export a stage's series at 0 from the start, so the first failure is an increase Prometheus can see."""
    for outcome in ("ok", "dead_lettered"):
        STAGE_MESSAGES.labels(stage, outcome)
    STAGE_RETRIES.labels(stage)
    TRANSIENT_GIVEN_UP.labels(stage)
    QUARANTINED.labels(stage)
    STAGE_DEFERRED.labels(stage)
    STAGE_BATCH_SECONDS.labels(stage)
    STAGE_BATCH_SIZE.labels(stage)
    LANE_YIELDED.labels(stage)
    for lane in ("live", "bulk"):
        LANE_RECORDS.labels(stage, lane)
        LANE_WAIT_SECONDS.labels(stage, lane)


SOURCE_EVENTS = Counter(
    "ragbus_source_events_total", "Document events a change source published (broker-confirmed).", ["source", "op"]
)
SOURCE_LAG_SECONDS = Gauge(
    "ragbus_source_lag_seconds", "From the last published change at the source to its publish confirmation.", ["source"]
)
SOURCE_LAG_RECORDS = Gauge(
    "ragbus_source_lag_records",
    "Changes seen at the source and not yet published (Debezium: records behind).",
    ["source"],
)
SOURCE_LAST_CHANGE = Gauge(
    "ragbus_source_last_change_timestamp_seconds", "When the source last saw a change (Unix time).", ["source"]
)


def register_source(source: str) -> None:
    """Export a source's series at 0 from the start."""
    for op in ("upsert", "delete"):
        SOURCE_EVENTS.labels(source, op)
    SOURCE_LAG_SECONDS.labels(source)
    SOURCE_LAG_RECORDS.labels(source)
    SOURCE_LAST_CHANGE.labels(source)
