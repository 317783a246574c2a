"""Settings grouped by concern, read from the environment in one place (`load_settings`).

Every group has its own `RAGBUS_*` prefix. A URL left unset (`RAGBUS_KAFKA_BOOTSTRAP`, `RAGBUS_MILVUS_URI`)
means "the embedded stack provides it": `ragbus up` starts the server and passes the URL to the processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragbus.errors import ConfigError

_S = TypeVar("_S", bound=BaseSettings)


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, frozen=True, extra="ignore")


def _secrets_from_files(data: object, prefix: str, fields: tuple[str, ...]) -> object:
    """Fill each secret `x` left unset from the file named by `x_file` (Kubernetes secrets mounted as files)."""
    if not isinstance(data, dict):
        return data
    for name in fields:
        path = data.get(f"{name}_file")
        if path and not data.get(name):
            try:
                data[name] = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"{prefix}{name.upper()}_FILE: cannot read {path} ({exc.strerror})") from None
    return data


class KafkaSettings(BaseSettings):
    """How every producer, consumer and admin client reaches Kafka."""

    model_config = _config("RAGBUS_KAFKA_")

    bootstrap: str | None = Field(None, description="Comma-separated host:port list; unset = embedded tansu.")
    topic_prefix: str = Field("ragbus", description="Prefix of every topic name (one namespace per deployment).")
    partitions: int = Field(3, ge=1, description="Partitions of each topic created at start-up.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of topics created at start-up.")
    max_message_bytes: int = Field(
        1_000_000, ge=10_000, description="Largest serialized event a producer sends; larger is refused."
    )
    request_timeout_ms: int = Field(30_000, ge=1000, description="Producer and admin request timeout.")
    bulk_threshold: int = Field(
        100,
        ge=1,
        description="A publish of at least this many events travels in the bulk lane (`ragbus publish --bulk` "
        "forces it; the REST API always publishes live), so a large load never delays a live edit.",
    )
    # An idle stage can wait up to this for a record just published: tansu answers a held fetch late (one hop
    # took 70 ms p50 and 159 ms p95 at aiokafka's 500, 12 and 47 ms at 100; bench/results/kafka-hop.json).
    fetch_max_wait_ms: int = Field(
        100, ge=1, le=10_000, description="How long the broker may hold a consumer's fetch that has no data yet."
    )
    compression: Literal["gzip", "none"] = Field("gzip", description="Producer compression codec.")
    idempotent: Literal["auto", "on", "off"] = Field(
        "auto", description="Idempotent producer: auto uses it where the broker supports it."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How every Kafka client connects: TLS (SSL), SASL, both or neither."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism when the protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password.")
    sasl_password_file: Path | None = Field(None, description="File holding the SASL password (wins if both unset).")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates (TLS).")
    ssl_certfile: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key (PEM) for mutual TLS.")

    @model_validator(mode="before")
    @classmethod
    def _password_file(cls, data: object) -> object:
        return _secrets_from_files(data, "RAGBUS_KAFKA_", ("sasl_password",))

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_") and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"RAGBUS_KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs RAGBUS_KAFKA_SASL_USERNAME and "
                "RAGBUS_KAFKA_SASL_PASSWORD (or RAGBUS_KAFKA_SASL_PASSWORD_FILE)"
            )
        return self


BM25StopWords = Literal["english", "none"]


class MilvusSettings(BaseSettings):
    """Where chunks are stored and searched."""

    model_config = _config("RAGBUS_MILVUS_")

    uri: str | None = Field(None, description="Milvus gRPC URI, e.g. http://host:19530; unset = embedded.")
    token: SecretStr | None = Field(None, description="Milvus token or user:password.")
    alias: str = Field("ragbus_chunks", description="Alias the API reads and the indexer writes through.")
    collection: str | None = Field(
        None, description="Collection the alias points at when first created (default: ALIAS_v1)."
    )
    consistency_level: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        "Strong", description="Read consistency: Strong makes a delete invisible to the very next query."
    )
    timeout_s: float = Field(10.0, gt=0, description="Timeout of every Milvus call.")
    read_uris: str | None = Field(
        None, description="Comma-separated Milvus URIs the query API searches (read replicas); unset = the main URI."
    )
    token_file: Path | None = Field(None, description="File holding the Milvus token or user:password.")
    secure: bool = Field(False, description="Connect over TLS (also implied by an https:// URI).")
    server_pem_path: Path | None = Field(None, description="Server certificate (PEM) to trust for TLS.")
    server_name: str | None = Field(None, description="TLS server name to verify when it differs from the host.")
    replica_number: int = Field(
        1, ge=1, description="In-memory replicas of each loaded collection (Milvus cluster query nodes)."
    )
    flush_interval_s: float = Field(
        10.0,
        ge=0,
        description="Indexer: seal written rows (flush) after each pause in writes and at least this often; 0 = never.",
    )
    search_ef: int = Field(
        0,
        ge=0,
        le=32768,
        description="Breadth of the engine's HNSW graph search (`ef`, at least top_k): higher finds more of the true "
        "nearest chunks in a large collection, slower; 0 = the engine's default. milvus-lite searches exactly.",
    )
    bm25: Literal["auto", "off"] = Field(
        "auto",
        description="auto: new collections get a BM25 full-text field where the server does BM25 (hybrid retrieval).",
    )
    bm25_stop_words: BM25StopWords = Field(
        "english",
        description="Words the BM25 field of a new collection leaves out: english = the 33 English stop words of "
        "Lucene (the, of, and, ...), which occur in nearly every chunk; none = every word (other languages).",
    )

    @model_validator(mode="before")
    @classmethod
    def _token_file(cls, data: object) -> object:
        return _secrets_from_files(data, "RAGBUS_MILVUS_", ("token",))

    @field_validator("uri", "read_uris")
    @classmethod
    def _no_credentials_in_uris(cls, value: str | None) -> str | None:
        # URIs are logged and label replica metrics: credentials belong in RAGBUS_MILVUS_TOKEN(_FILE).
        for uri in (value or "").split(","):
            if "@" in uri.split("//", 1)[-1].split("/", 1)[0]:
                raise ValueError("a Milvus URI must not hold credentials: set RAGBUS_MILVUS_TOKEN or its _FILE")
        return value

    @property
    def initial_collection(self) -> str:
        """Name of the physical collection created behind the alias on first start."""
        return self.collection or f"{self.alias}_v1"


class RedisSettings(BaseSettings):
    """Embedding cache, extraction cache, query cache and index generation counters."""

    model_config = _config("RAGBUS_REDIS_")

    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL; if unreachable, `ragbus up` starts a local redis-server on its port.",
    )
    namespace: str = Field("ragbus", description="Prefix of every key ragbus writes.")
    embedding_ttl_s: int = Field(30 * 24 * 3600, ge=60, description="Lifetime of a cached embedding.")
    extraction_ttl_s: int = Field(
        30 * 24 * 3600,
        ge=60,
        description="Lifetime of a document's cached extracted text (a replay or reindex within it parses nothing).",
    )
    query_cache_ttl_s: int = Field(300, ge=0, description="Lifetime of a cached answer (0 disables the cache).")
    cluster: bool = Field(False, description="The URL names one node of a Redis Cluster (RedisCluster client).")
    username: str | None = Field(None, description="ACL user (overrides the URL's).")
    password: SecretStr | None = Field(None, description="Password of the ACL user or requirepass (wins over the URL).")
    password_file: Path | None = Field(None, description="File holding the Redis password.")
    ssl_ca_file: Path | None = Field(None, description="CA bundle for a rediss:// URL (TLS).")
    ssl_cert_file: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    ssl_key_file: Path | None = Field(None, description="Client private key (PEM) for mutual TLS.")

    @model_validator(mode="before")
    @classmethod
    def _password_file(cls, data: object) -> object:
        return _secrets_from_files(data, "RAGBUS_REDIS_", ("password",))


class EmbeddingSettings(BaseSettings):
    """The embedding model shared by the embedder worker and the query API."""

    model_config = _config("RAGBUS_EMBED_")

    model: str = Field(
        "all-MiniLM-L6-v2", description="Model name or local path; the default is the packaged offline model."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Texts per encode call.")
    bulk_batch_size: int = Field(
        4,
        ge=1,
        le=4096,
        description="Texts per encode call in a bulk-lane batch, which gives way to live changes between calls and "
        "while one runs (on a model thread of its own, beside the live call): on 2 CPU cores a call of 4 takes at "
        "most 0.2 s, at the throughput of calls of 64 (raise it on a GPU).",
    )
    device: str = Field("cpu", description="torch device.")
    threads: int = Field(
        0,
        ge=0,
        description="Threads one model call uses (0 = one per core). On a busy CPU, one embedder process per "
        "core with 1 thread each wastes less than one process using every core.",
    )
    backend: Literal["torch", "onnx", "onnx-int8", "bench-null"] = Field(
        "torch",
        description="torch (sentence-transformers); onnx: ONNX Runtime, the model exported locally at full precision "
        "(torch's vectors: the two share indexes and cached vectors); onnx-int8: ONNX Runtime with int8 weights "
        "(other vectors: index and search with it alone); bench-null: benchmarks only, vectors that mean nothing "
        "(refused unless RAGBUS_BENCH_NULL_EMBEDDINGS is set).",
    )
    onnx_cache_dir: Path = Field(
        Path(".ragbus/onnx"), description="Where the ONNX exports are kept (made once per model and precision)."
    )
    bench_null_allowed: bool = Field(
        False,
        validation_alias="RAGBUS_BENCH_NULL_EMBEDDINGS",
        description="Benchmarks only (bench.pipeline_ceiling sets it for its own processes): allows "
        "RAGBUS_EMBED_BACKEND=bench-null. Never set it where answers matter.",
    )

    @model_validator(mode="after")
    def _bench_null_only_in_benchmarks(self) -> EmbeddingSettings:
        # Null vectors index and search like real ones, so a deployment given them would answer nonsense quietly.
        if self.backend == "bench-null" and not self.bench_null_allowed:
            raise ValueError(
                "RAGBUS_EMBED_BACKEND=bench-null gives vectors that mean nothing (the pipeline's benchmark without "
                "the model): it is refused unless RAGBUS_BENCH_NULL_EMBEDDINGS=1, which only the benchmarks set"
            )
        return self


class ChunkingSettings(BaseSettings):
    """How documents are cut, in the embedding model's own tokens."""

    model_config = _config("RAGBUS_CHUNK_")

    tokens: int = Field(200, ge=16, description="Passage tokens per chunk (title prefix and specials excluded).")
    overlap: int = Field(32, ge=0, description="Tokens shared by consecutive chunks.")
    title_tokens: int = Field(24, ge=0, description="Tokens of the title prefixed to each chunk for embedding.")
    # About 250 chunks at the default size: one such document alone embeds well within max_poll_interval_ms (a
    # batch of several is cut at RAGBUS_WORKER_MAX_CHUNKS). Its chunked and embedded output need not fit one Kafka
    # record (ragbus.record_parts); its extracted text must. Longer documents are dead-lettered with this variable
    # named; split them.
    max_document_chars: int = Field(200_000, ge=1, description="Documents longer than this are refused.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap >= self.tokens:
            raise ValueError(
                f"RAGBUS_CHUNK_OVERLAP ({self.overlap}) must be smaller than RAGBUS_CHUNK_TOKENS ({self.tokens})"
            )
        return self


class WorkerSettings(BaseSettings):
    """Consumer behaviour shared by the three workers."""

    model_config = _config("RAGBUS_WORKER_")

    max_records: int = Field(128, ge=1, description="Most events handled per batch.")
    max_chunks: int = Field(
        512,
        ge=1,
        description="Most chunks an embedder or indexer batch takes on (at least one document); "
        "the rest of the poll is polled again.",
    )
    batch_timeout_ms: int = Field(50, ge=0, description="How long a batch waits to fill.")
    # A batch must finish well inside this or the group rebalances (aiokafka#848): max_chunks bounds its work
    # (512 chunks embed in about 16 s on 2 cores), max_records and max_document_chars bound the chunker's.
    max_poll_interval_ms: int = Field(600_000, ge=10_000, description="Consumer max_poll_interval_ms.")
    retry_budget_s: float = Field(
        60.0, gt=0, description="How long a batch retries a transient failure before it is re-polled."
    )
    max_transient_attempts: int = Field(
        10,
        ge=1,
        description="Transient failures of one event, while every store the stage uses answers, before the event is "
        "dead-lettered with its history (about a minute with the backoff). A store that is down never counts.",
    )
    quarantine_poll_s: float = Field(
        2.0, gt=0, description="How often a worker reads `ragbus dlq quarantine` requests."
    )
    live_batches_per_bulk: int = Field(
        8,
        ge=1,
        description="Live batches a stage runs in a row while bulk records wait before it runs one bulk batch "
        "(bulk is never starved; a live record waits behind at most one bulk batch).",
    )
    bulk_max_records: int = Field(
        32,
        ge=1,
        description="Most events a bulk-lane batch takes (the rest is polled again): a live change that arrives "
        "meanwhile waits for at most such a batch, less where a stage gives way between steps.",
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of the worker's /metrics (0 = none).")
    pipeline: str | None = Field(
        None,
        description="Collection of the indexing pipeline this worker serves (a reindex's); unset = the default one.",
    )
    metrics_host: str = Field("127.0.0.1", description="Bind address of the worker's /metrics (0.0.0.0 in containers).")
    lag_interval_s: float = Field(
        15.0, ge=0, description="How often a worker exports its group's lag per partition to /metrics (0 = never)."
    )
    group_suffix: str = Field(
        "",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Appended to the consumer group: e.g. an indexer feeding a second Milvus deployment (`.dc2`).",
    )


class LLMProvider(BaseModel):
    """One OpenAI-compatible endpoint of the fallback chain."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="OpenAI-compatible base URL.")
    model: str = Field("gpt-4o-mini", description="Model name sent to the endpoint.")
    api_key: SecretStr = Field(SecretStr("unused"), description="API key of the endpoint.")


class LLMSettings(BaseSettings):
    """An OpenAI-compatible endpoint; unset base_url means extractive answers."""

    model_config = _config("RAGBUS_LLM_")

    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://host:8080/v1.")
    api_key: SecretStr = Field(SecretStr("unused"), description="API key of the endpoint.")
    model: str = Field("gpt-4o-mini", description="Model name sent to the endpoint.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of one completion call.")
    max_context_tokens: int = Field(2000, ge=100, description="Token budget of retrieved context.")
    max_answer_tokens: int = Field(400, ge=16, description="max_tokens of the completion.")
    fallbacks: list[LLMProvider] = Field(
        [],
        description='Fallback providers tried in order, JSON: [{"base_url": ..., "model": ..., "api_key": ...}].',
    )
    retries: int = Field(2, ge=0, le=10, description="Retries of a timeout, 429 or 5xx per provider (never 4xx).")
    retry_backoff_s: float = Field(0.2, ge=0, description="First retry delay; doubles on each retry.")
    breaker_failures: int = Field(3, ge=1, description="Consecutive failures that open a provider's breaker.")
    breaker_cooldown_s: float = Field(30.0, gt=0, description="Open breaker waits this long before one trial call.")


class ApiSettings(BaseSettings):
    """The query API process."""

    model_config = _config("RAGBUS_API_")

    host: str = Field("127.0.0.1", description="Bind address.")
    port: int = Field(8000, ge=1, le=65535, description="Bind port.")
    default_top_k: int = Field(5, ge=1, description="top_k when a query gives none.")
    max_top_k: int = Field(50, ge=1, description="Largest top_k accepted.")
    answer_passages: int = Field(3, ge=1, description="Passages quoted in an extractive answer.")
    search_timeout_s: float = Field(5.0, gt=0, description="Timeout of one vector search on one replica.")
    batch_max: int = Field(
        16,
        ge=1,
        le=256,
        description="Most concurrent questions encoded, or searched, in one call (1: each alone). query_api.batching.",
    )
    retrieval: Literal["hybrid", "dense"] = Field(
        "hybrid",
        description="hybrid: BM25 + dense fused by reciprocal rank fusion where the collection has BM25; else dense.",
    )
    rrf_k: int = Field(60, ge=1, description="k of reciprocal rank fusion (score = sum of 1 / (k + rank)).")
    read_at_write_marks: bool = Field(
        True,
        description="Search at the indexer's last write to the collection (ragbus.write_marks): every acknowledged "
        "change visible, without the real engine's Strong wait for its next time tick. Off: "
        "RAGBUS_MILVUS_CONSISTENCY_LEVEL on every search.",
    )
    query_threads: int = Field(
        1,
        ge=0,
        description="Threads one question's encoding uses (0 = one per core; docs/headroom.md).",
    )
    query_encode_calls: int = Field(
        2,
        ge=1,
        le=64,
        description="Model calls one batch of concurrent questions is cut into and encoded in at the same time, "
        "each on a thread of its own (1: the batch in one call on the model's thread; a lone question is always "
        "encoded there). query_api.question_calls, docs/headroom.md.",
    )
    query_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        "auto",
        description="How the API encodes questions. auto: onnx where RAGBUS_EMBED_BACKEND is torch and the model is "
        "mean-pooled (the same vectors; one question takes less than half the time), torch if the export cannot "
        "be made, else RAGBUS_EMBED_BACKEND. torch and onnx need an index of float vectors (RAGBUS_EMBED_BACKEND "
        "torch or onnx). onnx-int8: int8 weights for questions against any index, about a third of onnx's time a "
        "question, at a small cost in ranking (docs/headroom.md).",
    )
    replica_breaker_failures: int = Field(3, ge=1, description="Consecutive failures that open a replica's breaker.")
    replica_breaker_cooldown_s: float = Field(10.0, gt=0, description="Open replica breaker waits this long.")
    single_flight_lock_s: float = Field(
        15.0, gt=0, description="Redis lock that lets one API process compute an answer others wait for."
    )
    min_versions_timeout_s: float = Field(
        5.0, gt=0, description="How long a query with min_versions waits for them by default (read-your-writes)."
    )
    max_min_versions_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait a query's min_versions_timeout_s may ask for (larger is clamped)."
    )


class ApiSecuritySettings(BaseSettings):
    """Who may call the query API and how often: API keys, JWT bearer tokens, rate limits, body size."""

    model_config = _config("RAGBUS_API_")

    # Literal, not bool: only the exact word `off` switches authentication off; unset means on.
    auth: Literal["on", "off"] = Field(
        "on", description="`off` (embedded demo, tests) makes every caller tenant `default` with every scope."
    )
    keys: SecretStr = Field(
        SecretStr(""),
        description="Hashed API keys, comma-separated `sha256hex:tenant:scope+scope` (`ragbus api-key create`).",
    )
    keys_file: Path | None = Field(None, description="File of more hashed key entries, one per line (# comments).")
    jwt_hs256_secret: SecretStr | None = Field(None, description="Shared secret of HS256 bearer tokens (>= 32 bytes).")
    jwt_rs256_public_key: str | None = Field(None, description="PEM public key (or its path) of RS256 bearer tokens.")
    jwt_issuer: str | None = Field(None, description="Required `iss` claim of bearer tokens, when set.")
    jwt_audience: str | None = Field(None, description="Required `aud` claim of bearer tokens, when set.")
    jwt_tenant_claim: str = Field("tenant", description="Claim naming the caller's tenant.")
    rate_limit: int = Field(
        600, ge=0, description="Requests per credential per window, across API processes (0 = none)."
    )
    rate_window_s: int = Field(60, ge=1, description="Length of the rate-limit window.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Larger request bodies are refused before parsing.")
    feedback_ttl_s: int = Field(7 * 24 * 3600, ge=60, description="How long a query can receive feedback.")

    @field_validator(
        "keys_file", "jwt_hs256_secret", "jwt_rs256_public_key", "jwt_issuer", "jwt_audience", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose and Kubernetes templates pass "" for a variable left blank: that means "not configured".
        return None if value == "" else value

    @model_validator(mode="after")
    def _strong_secret(self) -> ApiSecuritySettings:
        secret = self.jwt_hs256_secret.get_secret_value() if self.jwt_hs256_secret else None
        if secret is not None and len(secret.encode()) < 32:
            raise ValueError("RAGBUS_API_JWT_HS256_SECRET must be at least 32 bytes")
        return self


class SourceSettings(BaseSettings):
    """Long-running change sources (`ragbus watch`, `ragbus source postgres|debezium`)."""

    model_config = _config("RAGBUS_SOURCE_")

    metrics_port: int = Field(0, ge=0, le=65535, description="Port of the source's /metrics and health (0 = none).")
    metrics_host: str = Field("127.0.0.1", description="Bind address of the source's /metrics (0.0.0.0 in containers).")
    state_dir: Path = Field(
        Path(".ragbus/sources"), description="Where `ragbus watch` keeps its manifest (path, content hash, version)."
    )
    debounce_ms: int = Field(
        100, ge=0, le=60_000, description="`ragbus watch`: quiet time after a file's last change before it is read."
    )
    postgres_dsn: SecretStr | None = Field(
        None, description="libpq connection string of the followed database (`ragbus source postgres --dsn`)."
    )
    retry_budget_s: float = Field(
        60.0, gt=0, description="How long a source retries an unconfirmed publish before it exits (nothing acked)."
    )


class ObjectSettings(BaseSettings):
    """Object storage (S3 API) holding the originals of documents larger than `inline_max_bytes`."""

    model_config = _config("RAGBUS_OBJECTS_")

    url: str | None = Field(
        None,
        description="S3 endpoint, e.g. http://minio:9000; unset = the embedded stack's SeaweedFS (or AWS S3 when "
        "RAGBUS_OBJECTS_AWS=true).",
    )
    aws: bool = Field(False, description="Use AWS S3 itself (its default endpoint) when no URL is set.")
    bucket: str = Field("ragbus-documents", min_length=3, description="Bucket of originals and their ledger.")
    access_key: SecretStr | None = Field(None, description="Access key id (unset: the client's default chain).")
    secret_key: SecretStr | None = Field(None, description="Secret access key.")
    region: str = Field("us-east-1", description="Region sent to the S3 API.")
    inline_max_bytes: int = Field(
        256 * 1024,
        ge=0,
        description="Originals up to this size travel inside their document event (base64) instead of being "
        "stored: no object-store request for them (0: store every original). Larger ones, or ones whose event "
        "would pass RAGBUS_KAFKA_MAX_MESSAGE_BYTES, are stored.",
    )

    @property
    def configured(self) -> bool:
        """Whether an object store is reachable by configuration."""
        return bool(self.url) or self.aws


class ExtractSettings(BaseSettings):
    """The extractor stage: what it accepts."""

    model_config = _config("RAGBUS_EXTRACT_")

    max_bytes: int = Field(
        50_000_000, ge=1, description="Originals larger than this are dead-lettered (reason too_large)."
    )
    concurrency: int = Field(
        8,
        ge=1,
        le=64,
        description="Documents of a batch extracted at once, so their object-store requests overlap (a document's "
        "own events stay in order; PDFs are parsed one at a time, PDFium is not thread-safe).",
    )


class StackSettings(BaseSettings):
    """The embedded stack that `ragbus up` starts."""

    model_config = _config("RAGBUS_STACK_")

    home: Path = Field(Path(".ragbus"), description="Directory holding all embedded state and logs.")
    kafka_port: int = Field(9092, ge=1, le=65535, description="Port of the embedded tansu broker.")
    kafka_storage: Literal["s3", "memory"] = Field(
        "s3", description="s3 keeps topics and offsets across restarts (local SeaweedFS); memory forgets."
    )
    s3_port: int = Field(8333, ge=1, le=65535, description="S3 port of the embedded SeaweedFS.")
    milvus_port: int = Field(19530, ge=1, le=65535, description="Port of the embedded milvus-lite server.")
    start_timeout_s: float = Field(120.0, gt=0, description="How long each server may take to become ready.")
    restart_limit: int = Field(
        5, ge=0, description="Crashes in a row of a worker or the API that are restarted; one more stops the stack."
    )
    restart_backoff_max_s: float = Field(
        30.0, ge=1, description="Longest wait before restarting a crashed process (1 s, doubled per crash in a row)."
    )
    restart_healthy_after_s: float = Field(
        60.0, gt=0, description="A process that ran this long counts as healthy: its crash streak starts over."
    )
    llm: Literal["gemma3-270m", "smollm2-135m", "off"] = Field(
        "off",
        description="Local generative model `ragbus up` serves with llama-cpp-python (pip install 'ragbus[llm]') "
        "when RAGBUS_LLM_BASE_URL is unset: gemma3-270m (Gemma 3 270M, base model) or smollm2-135m "
        "(SmolLM2-135M-Instruct); off: extractive answers (docs/benchmarks.md compares the three).",
    )
    llm_port: int = Field(0, ge=0, le=65535, description="Port of the local LLM server (0: a free port).")
    llm_context_tokens: int = Field(
        4096, ge=512, description="Context window of the local LLM (its tokens): passages, question and answer."
    )
    llm_threads: int = Field(0, ge=0, description="Threads of the local LLM (0: one per core).")


class EvalSettings(BaseSettings):
    """Scheduled evaluation of retrieval quality by the query API (off unless a judged set is named)."""

    model_config = _config("RAGBUS_EVAL_")

    judged_dir: Path | None = Field(
        None,
        description="Judged set in the BEIR layout (queries.jsonl, qrels/test.tsv) the query API ranks on a schedule, "
        "exporting ragbus_eval_ndcg_at_10{set}; unset: no scheduled evaluation.",
    )
    set_name: str = Field("", description="The `set` label of the exported figures (default: the directory's name).")
    interval_s: float = Field(3600.0, ge=10, description="Seconds between two evaluations (the first runs at start).")
    limit: int | None = Field(None, ge=1, description="Only the first N judged queries (unset: all).")
    tenant: str = Field("default", min_length=1, description="Tenant whose documents the judged set refers to.")


@dataclass(frozen=True)
class Settings:
    """Every settings group, read once from the environment."""

    kafka: KafkaSettings
    milvus: MilvusSettings
    redis: RedisSettings
    embedding: EmbeddingSettings
    chunking: ChunkingSettings
    worker: WorkerSettings
    llm: LLMSettings
    api: ApiSettings
    stack: StackSettings
    api_security: ApiSecuritySettings
    source: SourceSettings
    objects: ObjectSettings = field(default_factory=ObjectSettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    evaluation: EvalSettings = field(default_factory=EvalSettings)

    @property
    def kafka_bootstrap(self) -> str:
        """The broker list, or a ConfigError naming the variable when nothing provides one."""
        if not self.kafka.bootstrap:
            raise ConfigError("RAGBUS_KAFKA_BOOTSTRAP is not set (run `ragbus up` or set it to host:port)")
        return self.kafka.bootstrap

    @property
    def milvus_uri(self) -> str:
        """The Milvus URI, or a ConfigError naming the variable when nothing provides one."""
        if not self.milvus.uri:
            raise ConfigError("RAGBUS_MILVUS_URI is not set (run `ragbus up` or set it to http://host:19530)")
        return self.milvus.uri

    @property
    def milvus_read_uris(self) -> list[str]:
        """The replicas the query API searches: RAGBUS_MILVUS_READ_URIS, else the main URI."""
        listed = [u.strip() for u in (self.milvus.read_uris or "").split(",") if u.strip()]
        return listed or [self.milvus_uri]


def _load(group: type[_S]) -> _S:
    try:
        return group()
    except ValidationError as exc:
        prefix = group.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{prefix}{err['loc'][0]}".upper() + f": {err['msg']}" if err["loc"] else f"{prefix}*: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid setting: {problems}") from None


def load_settings() -> Settings:
    """Read every group from the environment; a bad value fails here with the variable's name."""
    return Settings(
        kafka=_load(KafkaSettings),
        milvus=_load(MilvusSettings),
        redis=_load(RedisSettings),
        embedding=_load(EmbeddingSettings),
        chunking=_load(ChunkingSettings),
        worker=_load(WorkerSettings),
        llm=_load(LLMSettings),
        api=_load(ApiSettings),
        stack=_load(StackSettings),
        api_security=_load(ApiSecuritySettings),
        source=_load(SourceSettings),
        objects=_load(ObjectSettings),
        extract=_load(ExtractSettings),
        evaluation=_load(EvalSettings),
    )
