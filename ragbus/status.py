"""`ragbus status`: what the pipeline holds and owes — topics, lag per stage, DLQ depth, cache, index, sources."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from ragbus.dead_letters import DeadLetter, list_dead_letters
from ragbus.errors import RagbusError
from ragbus.kafka_clients import consumer_lag, end_offsets, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.milvus.retrieval_mode import RetrievalMode, read_retrieval_modes
from ragbus.milvus.store import MilvusChunkStore
from ragbus.pipelines import PipelineContext, PipelineRegistry
from ragbus.redis_store import REDIS_DOWN, KeySpace, open_redis
from ragbus.reindex_progress import measure
from ragbus.settings import Settings
from ragbus.source_registry import announced_sources
from schemas.fields import utc_now
from schemas.pipelines import PipelineState
from schemas.topics import STAGES, Lane, PipelineTopics, Topics


@dataclass
class PipelineStatus:
    """A snapshot; a part that could not be read holds the reason instead of a number."""

    topics: dict[str, dict[int, int] | str] = field(default_factory=dict)
    lag: dict[str, dict[int, int] | str] = field(default_factory=dict)  # the live lane's, per stage
    bulk_lag: dict[str, dict[int, int] | str] = field(default_factory=dict)  # the bulk lane's, per stage
    dead_letters: dict[str, int | str] = field(default_factory=dict)
    alias: str = ""
    alias_target: str | None = None
    chunks: int | str = 0
    retrieval: list[RetrievalMode] = field(default_factory=list)  # per deployment the query API reads
    embedding_cache: tuple[int, int] | str = (0, 0)
    pipelines: list[str] = field(default_factory=list)  # one line per live pipeline (reindexes included)
    sources: list[str] = field(default_factory=list)  # one line per announced change source
    pending_letters: dict[str, list[DeadLetter]] = field(default_factory=dict)  # not replayed yet, per stage

    @property
    def embedding_cache_hit_ratio(self) -> float | None:
        """Share of embedding lookups answered from the cache (None before the first lookup)."""
        if isinstance(self.embedding_cache, str) or not sum(self.embedding_cache):
            return None
        hits, misses = self.embedding_cache
        return hits / (hits + misses)


async def topic_end_offsets(settings: Settings, names: list[str]) -> dict[str, dict[int, int] | str]:
    """End offset of every partition of each topic ("missing" for a topic that does not exist)."""
    consumer = AIOKafkaConsumer(**kafka_connection(settings), enable_auto_commit=False)
    await start_client(settings, consumer)
    try:
        # Every topic's partitions, read before any assignment: a consumer tracking no topic fetches the metadata
        # of all of them, while an assigned one narrows its metadata to what it was assigned.
        await consumer._client.force_metadata_update()
        present = {name: sorted(consumer.partitions_for_topic(name) or set()) for name in names}
        # One assignment for every partition of every topic (assigning topic after topic would narrow it again).
        ends = await end_offsets(consumer, [TopicPartition(n, p) for n, parts in present.items() for p in parts])
        return {
            name: {p: ends[TopicPartition(name, p)] for p in parts} if parts else "missing"
            for name, parts in present.items()
        }
    finally:
        await consumer.stop()


async def _embedding_cache(settings: Settings) -> tuple[int, int] | str:
    redis = open_redis(settings.redis)
    try:
        hits, misses = await redis.hmget(KeySpace(settings.redis.namespace).embedding_cache_stats(), ["hit", "miss"])
        return int(hits or 0), int(misses or 0)
    except REDIS_DOWN as exc:
        return f"unavailable: {exc}"
    finally:
        await redis.aclose()


async def collect_status(settings: Settings) -> PipelineStatus:
    """Read topics, lag, DLQ depth, the embedding cache and the index; no secrets are included."""
    topics = Topics(settings.kafka.topic_prefix)
    status = PipelineStatus(alias=settings.milvus.alias)
    names = PipelineTopics(topics)  # the default pipeline; reindexes are listed under pipelines
    # Each part starts clients of its own: read them all at once, not one after another.
    await asyncio.gather(
        _topics_status(settings, topics, status),
        _cache_status(settings, status),
        *(_stage_status(settings, names, stage, status) for stage in STAGES),
        _index_status(settings, status),
        _retrieval_status(settings, status),
        _other_status(settings, status),
    )
    status.lag = {stage: status.lag[stage] for stage in STAGES}  # in pipeline order, whichever answered first
    status.bulk_lag = {stage: status.bulk_lag[stage] for stage in STAGES}
    status.dead_letters = {stage: status.dead_letters[stage] for stage in STAGES}
    return status


async def _topics_status(settings: Settings, topics: Topics, status: PipelineStatus) -> None:
    try:
        status.topics = await topic_end_offsets(settings, topics.all())
    except (RagbusError, KafkaError, OSError) as exc:
        status.topics = dict.fromkeys(topics.all(), f"unavailable: {exc}")


async def _cache_status(settings: Settings, status: PipelineStatus) -> None:
    status.embedding_cache = await _embedding_cache(settings)


async def _index_status(settings: Settings, status: PipelineStatus) -> None:
    try:
        store = await asyncio.to_thread(MilvusChunkStore, settings.milvus, settings.milvus_uri)
        try:
            status.alias_target = await asyncio.to_thread(store.alias_target)
            status.chunks = await asyncio.to_thread(store.count_chunks) if status.alias_target else 0
        finally:
            store.close()
    except RagbusError as exc:
        status.chunks = f"unavailable: {exc}"


async def _retrieval_status(settings: Settings, status: PipelineStatus) -> None:
    status.retrieval = await read_retrieval_modes(settings.milvus, settings.milvus_read_uris, settings.api.retrieval)


async def _other_status(settings: Settings, status: PipelineStatus) -> None:
    status.pipelines = await _pipelines(settings)
    try:
        status.sources = [s.render(utc_now()) for s in await announced_sources(settings)]
    except (RagbusError, KafkaError, OSError) as exc:
        status.sources = [f"unavailable: {exc}"]


async def _stage_status(settings: Settings, names: PipelineTopics, stage: str, status: PipelineStatus) -> None:
    for lane, lags in ((Lane.LIVE, status.lag), (Lane.BULK, status.bulk_lag)):
        try:
            lags[stage] = await consumer_lag(settings, names.group(stage), names.input_topic(stage, lane))
        except (RagbusError, OSError) as exc:
            lags[stage] = f"unavailable: {exc}"
    try:
        letters = await list_dead_letters(settings, stage)
        status.pending_letters[stage] = [letter for letter in letters if not letter.replayed]
        status.dead_letters[stage] = len(status.pending_letters[stage])
    except (RagbusError, OSError) as exc:
        status.dead_letters[stage] = f"unavailable: {exc}"


async def _pipelines(settings: Settings) -> list[str]:
    try:
        specs = await PipelineRegistry(settings).load()
        lines = []
        for spec in sorted(specs.values(), key=lambda s: s.created_at):
            if spec.state is PipelineState.RETIRED:
                continue
            line = f"{spec.collection:<30} {spec.state.value:<8} chunk_tokens={spec.chunk_tokens} model={spec.model}"
            if not spec.default:  # a reindex: how far its replay has got
                line += "  " + (await measure(PipelineContext.of(settings, spec))).render().split(": ", 1)[1]
            lines.append(line)
        return lines
    except (RagbusError, KafkaError, OSError) as exc:
        return [f"unavailable: {exc}"]


def _once() -> Callable[[object], str]:
    """A cell: an error already printed in an earlier cell reads "(same error as above)" instead of repeating."""
    shown: set[str] = set()

    def cell(value: object) -> str:
        text = str(value)
        if not text.startswith("unavailable"):
            return text
        if text in shown:
            return "(same error as above)"
        shown.add(text)
        return text

    return cell


def render(status: PipelineStatus) -> str:
    """Human-readable lines."""
    cell = _once()
    lines = ["topic                                    partitions  records written (end offsets)"]
    for name, ends in status.topics.items():
        shown = f"{len(ends):<11} {sum(ends.values())}" if isinstance(ends, dict) else cell(ends)
        lines.append(f"{name:<40} {shown}")
    lines.append("")
    lines.append("stage     live lag (per partition)       bulk lag (per partition)       pending dead letters")
    for stage in STAGES:
        live, bulk = (
            f"{sum(lag.values())} {dict(sorted(lag.items()))}" if isinstance(lag, dict) else cell(lag)
            for lag in (status.lag.get(stage), status.bulk_lag.get(stage))
        )
        lines.append(f"{stage:<9} {live:<30} {bulk:<30} {cell(status.dead_letters.get(stage))}")
    ratio = status.embedding_cache_hit_ratio
    if isinstance(status.embedding_cache, str):
        cache = cell(status.embedding_cache)
    elif ratio is None:
        cache = "no lookups yet"
    else:
        cache = f"hit ratio {ratio:.2f} ({status.embedding_cache[0]} of {sum(status.embedding_cache)} lookups)"
    lines.append(f"embedding cache  {cache}")
    lines.append(
        f"index     alias {status.alias} -> {status.alias_target or '(not created yet)'}, {cell(status.chunks)} chunks"
    )
    for mode in status.retrieval:
        lines.append(f"retrieval {mode.uri}: {mode.mode} ({cell(mode.reason)})")
    if status.pipelines:
        lines.append("pipelines")
        lines.extend(f"  {cell(line)}" for line in status.pipelines)
    lines.append("sources" if status.sources else "sources   none running (ragbus watch, ragbus source ...)")
    lines.extend(f"  {cell(line)}" for line in status.sources)
    return "\n".join(lines)
