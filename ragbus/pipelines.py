"""Indexing pipelines: the registry on the compacted pipelines topic, and what a worker of one pipeline uses.

Every pipeline writes into its own collection; the alias decides which one is served. So a reindex never touches
what is served until the switch, the previous collection stays current (its pipeline keeps running) for a rollback,
and a worker's settings for chunking and model come from its pipeline's spec, not from whoever started it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from ragbus.errors import ConfigError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics, read_to_end, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.settings import Settings
from schemas.codec import decode, encode
from schemas.errors import ContractError
from schemas.pipelines import PipelineSpec, PipelineState
from schemas.topics import PipelineTopics, Topics


class PipelineRegistry:
    """Reads and writes PipelineSpec records (the latest record per collection wins)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics(settings.kafka.topic_prefix)

    async def load(self) -> dict[str, PipelineSpec]:
        """Every pipeline ever registered, by collection."""
        await ensure_topics(self.settings, [self.topics.pipelines], compacted=[self.topics.pipelines])
        consumer = AIOKafkaConsumer(**kafka_connection(self.settings), enable_auto_commit=False)
        await start_client(self.settings, consumer)
        specs: dict[str, PipelineSpec] = {}
        try:
            await consumer._client.force_metadata_update()  # the topic may have just been created
            partitions = consumer.partitions_for_topic(self.topics.pipelines) or set()
            tps = [TopicPartition(self.topics.pipelines, p) for p in sorted(partitions)]
            for record in await read_to_end(consumer, tps):
                if record.value is not None:
                    spec = _decode_spec(record.value)
                    specs[spec.collection] = spec
        finally:
            await consumer.stop()
        return specs

    async def put(self, *specs: PipelineSpec) -> None:
        """Record specs (confirmed by the broker before returning)."""
        async with KafkaEventProducer(self.settings) as producer:
            await producer.send_all(
                [OutboundMessage(self.topics.pipelines, s.collection.encode(), encode(s)) for s in specs]
            )


def _decode_spec(raw: bytes) -> PipelineSpec:
    try:
        return decode(raw, PipelineSpec)
    except ContractError as exc:
        raise ConfigError(f"the pipelines topic holds an unreadable record: {exc}") from exc


def default_spec(settings: Settings, state: PipelineState = PipelineState.SERVING) -> PipelineSpec:
    """The deployment's first pipeline, as its environment configures it."""
    return PipelineSpec(
        collection=settings.milvus.initial_collection,
        state=state,
        default=True,
        chunk_tokens=settings.chunking.tokens,
        chunk_overlap=settings.chunking.overlap,
        title_tokens=settings.chunking.title_tokens,
        model=settings.embedding.model,
    )


def with_spec(settings: Settings, spec: PipelineSpec) -> Settings:
    """Settings whose chunking and embedding model are the pipeline's."""
    return dataclasses.replace(
        settings,
        chunking=settings.chunking.model_copy(
            update={"tokens": spec.chunk_tokens, "overlap": spec.chunk_overlap, "title_tokens": spec.title_tokens}
        ),
        embedding=settings.embedding.model_copy(update={"model": spec.model}),
        worker=settings.worker.model_copy(update={"pipeline": spec.collection}),
    )


@dataclass(frozen=True)
class PipelineContext:
    """What one worker of one pipeline uses: its settings, topics, consumer groups and target collection."""

    settings: Settings
    collection: str
    names: PipelineTopics

    @classmethod
    def default(cls, settings: Settings) -> PipelineContext:
        """The first pipeline, configured by the environment."""
        return cls(settings, settings.milvus.initial_collection, PipelineTopics(Topics(settings.kafka.topic_prefix)))

    @classmethod
    def of(cls, settings: Settings, spec: PipelineSpec) -> PipelineContext:
        """A registered pipeline."""
        topics = Topics(settings.kafka.topic_prefix)
        names = PipelineTopics(topics, None if spec.default else spec.collection)
        return cls(with_spec(settings, spec), spec.collection, names)


async def resolve_pipeline(settings: Settings) -> PipelineContext:
    """The pipeline RAGBUS_WORKER_PIPELINE names (its spec from the registry), or the default one."""
    name = settings.worker.pipeline
    if not name or name == settings.milvus.initial_collection:
        return PipelineContext.default(settings)
    spec = (await PipelineRegistry(settings).load()).get(name)
    if spec is None:
        raise ConfigError(f"RAGBUS_WORKER_PIPELINE={name}: no such pipeline (`ragbus reindex --list` shows them)")
    if spec.state is PipelineState.RETIRED:
        raise ConfigError(f"RAGBUS_WORKER_PIPELINE={name}: that pipeline was retired; stop its workers")
    return PipelineContext.of(settings, spec)
