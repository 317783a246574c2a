"""Topic names, in one place. A breaking contract change gets a new `.vN` topic, never a silent reshape."""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("chunker", "embedder", "indexer")


@dataclass(frozen=True)
class Topics:
    """The topics of one deployment, all under one prefix."""

    prefix: str = "ragbus"

    @property
    def documents(self) -> str:
        """Document events (source of truth), keyed by doc_id; a null value is a delete."""
        return f"{self.prefix}.documents.v1"

    @property
    def chunks(self) -> str:
        """One ChunkedDocument per document event."""
        return f"{self.prefix}.chunks.v1"

    @property
    def embedded(self) -> str:
        """One EmbeddedDocument per chunked document."""
        return f"{self.prefix}.embedded.v1"

    @property
    def cache_invalidation(self) -> str:
        """One CacheInvalidation per document whose indexed state changed."""
        return f"{self.prefix}.cache-invalidation.v1"

    def dead_letter(self, stage: str) -> str:
        """Messages a stage could not process, with the reason in headers."""
        return f"{self.prefix}.dlq.{stage}.v1"

    def all(self) -> list[str]:
        """Every topic a deployment needs, created at start-up if missing."""
        return [
            self.documents,
            self.chunks,
            self.embedded,
            self.cache_invalidation,
            *(self.dead_letter(stage) for stage in STAGES),
        ]
