"""Settings grouped by concern, read from the environment in one place (`load_settings`).

Every group has its own `RAGBUS_*` prefix. A URL left unset (`RAGBUS_KAFKA_BOOTSTRAP`, `RAGBUS_MILVUS_URI`)
means "the embedded stack provides it": `ragbus up` starts the server and passes the URL to the processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ragbus.errors import ConfigError

_S = TypeVar("_S", bound=BaseSettings)


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, frozen=True, extra="ignore")


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
    compression: Literal["gzip", "none"] = Field("gzip", description="Producer compression codec.")
    idempotent: Literal["auto", "on", "off"] = Field(
        "auto", description="Idempotent producer: auto uses it where the broker supports it."
    )


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

    @property
    def initial_collection(self) -> str:
        """Name of the physical collection created behind the alias on first start."""
        return self.collection or f"{self.alias}_v1"


class RedisSettings(BaseSettings):
    """Embedding cache, query cache and index generation counters."""

    model_config = _config("RAGBUS_REDIS_")

    url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="Redis URL; if unreachable, `ragbus up` starts a local redis-server on its port.",
    )
    namespace: str = Field("ragbus", description="Prefix of every key ragbus writes.")
    embedding_ttl_s: int = Field(30 * 24 * 3600, ge=60, description="Lifetime of a cached embedding.")
    query_cache_ttl_s: int = Field(300, ge=0, description="Lifetime of a cached answer (0 disables the cache).")


class EmbeddingSettings(BaseSettings):
    """The embedding model shared by the embedder worker and the query API."""

    model_config = _config("RAGBUS_EMBED_")

    model: str = Field(
        "all-MiniLM-L6-v2", description="Model name or local path; the default is the packaged offline model."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Texts per encode call.")
    device: str = Field("cpu", description="torch device.")


class ChunkingSettings(BaseSettings):
    """How documents are cut, in the embedding model's own tokens."""

    model_config = _config("RAGBUS_CHUNK_")

    tokens: int = Field(200, ge=16, description="Passage tokens per chunk (title prefix and specials excluded).")
    overlap: int = Field(32, ge=0, description="Tokens shared by consecutive chunks.")
    title_tokens: int = Field(24, ge=0, description="Tokens of the title prefixed to each chunk for embedding.")
    # About 250 chunks: a document's embedded message (text + 2 KB of vector per chunk) stays under the 1 MB
    # Kafka record limit, and a batch of RAGBUS_WORKER_MAX_RECORDS such documents embeds well within
    # max_poll_interval_ms. Longer documents are dead-lettered with this variable named; split them.
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

    max_records: int = Field(32, ge=1, description="Most events handled per batch.")
    batch_timeout_ms: int = Field(50, ge=0, description="How long a batch waits to fill.")
    # A batch of max_records documents must finish well inside this or the group rebalances (aiokafka#848).
    max_poll_interval_ms: int = Field(600_000, ge=10_000, description="Consumer max_poll_interval_ms.")
    retry_budget_s: float = Field(
        60.0, gt=0, description="How long a batch retries a transient failure before it is re-polled."
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of the worker's /metrics (0 = none).")


class LLMSettings(BaseSettings):
    """An OpenAI-compatible endpoint; unset base_url means extractive answers."""

    model_config = _config("RAGBUS_LLM_")

    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://host:8080/v1.")
    api_key: SecretStr = Field(SecretStr("unused"), description="API key of the endpoint.")
    model: str = Field("gpt-4o-mini", description="Model name sent to the endpoint.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of one completion call.")
    max_context_tokens: int = Field(2000, ge=100, description="Token budget of retrieved context.")
    max_answer_tokens: int = Field(400, ge=16, description="max_tokens of the completion.")


class ApiSettings(BaseSettings):
    """The query API process."""

    model_config = _config("RAGBUS_API_")

    host: str = Field("127.0.0.1", description="Bind address.")
    port: int = Field(8000, ge=1, le=65535, description="Bind port.")
    default_top_k: int = Field(5, ge=1, description="top_k when a query gives none.")
    max_top_k: int = Field(50, ge=1, description="Largest top_k accepted.")
    answer_passages: int = Field(3, ge=1, description="Passages quoted in an extractive answer.")


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
    )
