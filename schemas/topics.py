"""Topic names, in one place. A breaking contract change gets a new `.vN` topic, never a silent reshape."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

STAGES = ("extractor", "chunker", "embedder", "indexer")
LANED = ("documents", "extracted", "chunks", "embedded")  # the topics that have a bulk twin


class Lane(StrEnum):
    """Which lane a document event travels in. Every stage serves the live lane first; bulk work (a large
    publish, a source's snapshot, a dead-letter replay) never holds a live change for more than one batch."""

    LIVE = "live"
    BULK = "bulk"


def in_lane(topic: str, lane: Lane) -> str:
    """The twin of a laned `topic` (`<name>.v1` live, `<name>.bulk.v1` bulk) in `lane`; other topics unchanged."""
    base = topic.removesuffix(".v1").removesuffix(".bulk")
    if not topic.endswith(".v1") or base.rsplit(".", 1)[-1] not in LANED:
        return topic
    return f"{base}.bulk.v1" if lane is Lane.BULK else f"{base}.v1"


def lane_of(topic: str) -> Lane:
    """The lane a topic belongs to."""
    return Lane.BULK if topic.endswith(".bulk.v1") else Lane.LIVE


@dataclass(frozen=True)
class Topics:
    """The topics of one deployment, all under one prefix."""

    prefix: str = "ragbus"

    @property
    def documents(self) -> str:
        """Document events (source of truth), keyed by doc_id; a null value is a delete."""
        return f"{self.prefix}.documents.v1"

    def documents_in(self, lane: Lane) -> str:
        """The documents topic of `lane`: both are sources of truth, compacted, and versions decide between them."""
        return in_lane(self.documents, lane)

    def document_topics(self) -> list[str]:
        """Both documents topics, live first."""
        return [self.documents_in(lane) for lane in Lane]

    @property
    def extracted(self) -> str:
        """One ExtractedDocument per document event (its text as structured blocks)."""
        return f"{self.prefix}.extracted.v1"

    @property
    def chunks(self) -> str:
        """The ChunkedDocument of each extracted document (in parts if it does not fit one record)."""
        return f"{self.prefix}.chunks.v1"

    @property
    def embedded(self) -> str:
        """The EmbeddedDocument of each chunked document (in parts if it does not fit one record)."""
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
        return [*self.document_topics(), self.pipelines, self.quarantine]

    def all(self) -> list[str]:
        """Every topic a deployment needs, created at start-up if missing."""
        return [
            *(in_lane(t, lane) for t in (self.documents, self.extracted, self.chunks, self.embedded) for lane in Lane),
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

    def input_topic(self, stage: str, lane: Lane = Lane.LIVE) -> str:
        """What a stage consumes in `lane`."""
        live = {
            "extractor": self.topics.documents,
            "chunker": self.extracted,
            "embedder": self.chunks,
            "indexer": self.embedded,
        }[stage]
        return in_lane(live, lane)

    def input_topics(self, stage: str) -> list[str]:
        """What a stage consumes, live lane first."""
        return [self.input_topic(stage, lane) for lane in Lane]

    def routes(self, stage: str) -> dict[str, str]:
        """Where a stage forwards a record, by the topic it came from: into the same lane downstream."""
        following = {"extractor": self.extracted, "chunker": self.chunks, "embedder": self.embedded}.get(stage)
        if following is None:
            return {}
        return {self.input_topic(stage, lane): in_lane(following, lane) for lane in Lane}

    def own_topics(self) -> list[str]:
        """Topics only this pipeline uses (both lanes)."""
        return [in_lane(topic, lane) for topic in (self.extracted, self.chunks, self.embedded) for lane in Lane]
