"""`ragbus status`: what the pipeline holds and owes — lag per stage, index size and alias, DLQ depth."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ragbus.dead_letters import list_dead_letters
from ragbus.errors import RagbusError
from ragbus.kafka_clients import consumer_lag
from ragbus.milvus_store import MilvusChunkStore
from ragbus.settings import Settings
from schemas.topics import STAGES, Topics


@dataclass
class PipelineStatus:
    """A snapshot; a part that could not be read holds the reason instead of a number."""

    lag: dict[str, dict[int, int] | str] = field(default_factory=dict)
    dead_letters: dict[str, int | str] = field(default_factory=dict)
    alias: str = ""
    alias_target: str | None = None
    chunks: int | str = 0


def _input_topic(topics: Topics, stage: str) -> str:
    return {"chunker": topics.documents, "embedder": topics.chunks, "indexer": topics.embedded}[stage]


async def collect_status(settings: Settings) -> PipelineStatus:
    """Read lag, DLQ depth and the index; no secrets are included."""
    topics = Topics(settings.kafka.topic_prefix)
    status = PipelineStatus(alias=settings.milvus.alias)
    for stage in STAGES:
        group = f"{settings.kafka.topic_prefix}.{stage}"
        try:
            status.lag[stage] = await consumer_lag(settings, group, _input_topic(topics, stage))
        except (RagbusError, OSError) as exc:
            status.lag[stage] = f"unavailable: {exc}"
        try:
            letters = await list_dead_letters(settings, stage)
            status.dead_letters[stage] = sum(not letter.replayed for letter in letters)
        except (RagbusError, OSError) as exc:
            status.dead_letters[stage] = f"unavailable: {exc}"
    try:
        store = await asyncio.to_thread(MilvusChunkStore, settings.milvus, settings.milvus_uri)
        try:
            status.alias_target = await asyncio.to_thread(store.alias_target)
            status.chunks = await asyncio.to_thread(store.count_chunks) if status.alias_target else 0
        finally:
            store.close()
    except RagbusError as exc:
        status.chunks = f"unavailable: {exc}"
    return status


def render(status: PipelineStatus) -> str:
    """Human-readable lines."""
    lines = ["stage     lag (per partition)            pending dead letters"]
    for stage in STAGES:
        lag = status.lag.get(stage)
        shown = f"{sum(lag.values())} {dict(sorted(lag.items()))}" if isinstance(lag, dict) else str(lag)
        lines.append(f"{stage:<9} {shown:<30} {status.dead_letters.get(stage)}")
    lines.append(
        f"index     alias {status.alias} -> {status.alias_target or '(not created yet)'}, {status.chunks} chunks"
    )
    return "\n".join(lines)
