"""Topic names, in one place. A breaking contract change gets a new `.vN` topic, never a silent reshape."""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("extractor", "chunker", "embedder", "indexer")


@dataclass(frozen=True)
class Topics:
    """The topics of one deployment, all under one prefix."""

    prefix: str = "ragbus"

    @property
    def documents(self) -> str:
        """Document events (source of truth), keyed by doc_id; a null value is a delete."""
        return f"{self.prefix}.documents.v1"

    @property
    def extracted(self) -> str:
        """One ExtractedDocument per document event (its text as structured blocks)."""
        return f"{self.prefix}.extracted.v1"

    @property
    def chunks(self) -> str:
        """One ChunkedDocument per extracted document."""
        return f"{self.prefix}.chunks.v1"

    @property
    def embedded(self) -> str:
        """One EmbeddedDocument per chunked document."""
        return f"{self.prefix}.embedded.v1"

    @property
    def cache_invalidation(self) -> str:
        """One CacheInvalidation per document whose indexed state changed."""
        return f"{self.prefix}.cache-invalidation.v1"

    @property
    def pipelines(self) -> str:
        """Registry of indexing pipelines (PipelineSpec), compacted, keyed by collection."""
        return f"{self.prefix}.pipelines.v1"

    @property
    def quarantine(self) -> str:
        """Records an operator quarantined (QuarantineRequest), compacted, keyed by stage/topic/partition/offset."""
        return f"{self.prefix}.quarantine.v1"

    @property
    def sources(self) -> str:
        """Heartbeats of the running change sources (SourceHeartbeat), compacted, keyed by instance."""
        return f"{self.prefix}.sources.v1"

    def dead_letter(self, stage: str) -> str:
        """Messages a stage could not process, with the reason in headers."""
        return f"{self.prefix}.dlq.{stage}.v1"

    def compacted(self) -> list[str]:
        """Topics that keep the latest record per key (the sources of truth)."""
        return [self.documents, self.pipelines, self.quarantine]

    def all(self) -> list[str]:
        """Every topic a deployment needs, created at start-up if missing."""
        return [
            self.documents,
            self.extracted,
            self.chunks,
            self.embedded,
            self.cache_invalidation,
            self.pipelines,
            self.quarantine,
            *(self.dead_letter(stage) for stage in STAGES),
        ]


@dataclass(frozen=True)
class PipelineTopics:
    """Intermediate topics and consumer groups of one indexing pipeline.

    The default (first) pipeline uses the plain names (`<prefix>.chunks.v1`, group `<prefix>.chunker`); a pipeline
    added by a reindex has its own, named after its collection, so it replays the documents topic independently.
    """

    topics: Topics
    name: str | None = None

    def _named(self, what: str) -> str:
        return f"{self.topics.prefix}.pipeline.{self.name}.{what}"

    @property
    def extracted(self) -> str:
        """Extracted documents of this pipeline."""
        return self._named("extracted.v1") if self.name else self.topics.extracted

    @property
    def chunks(self) -> str:
        """Chunked documents of this pipeline."""
        return self._named("chunks.v1") if self.name else self.topics.chunks

    @property
    def embedded(self) -> str:
        """Embedded documents of this pipeline."""
        return self._named("embedded.v1") if self.name else self.topics.embedded

    def group(self, stage: str) -> str:
        """Consumer group of a stage."""
        return self._named(stage) if self.name else f"{self.topics.prefix}.{stage}"

    def input_topic(self, stage: str) -> str:
        """What a stage consumes."""
        return {
            "extractor": self.topics.documents,
            "chunker": self.extracted,
            "embedder": self.chunks,
            "indexer": self.embedded,
        }[stage]

    def own_topics(self) -> list[str]:
        """Topics only this pipeline uses."""
        return [self.extracted, self.chunks, self.embedded]
