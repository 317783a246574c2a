"""Contract of the pipelines topic: what each indexing pipeline builds, and whether it serves.

An indexing pipeline is one chunker → embedder → indexer chain writing into its own Milvus collection. The first
pipeline serves from the start; a reindex adds another (new chunking or model) that replays the documents topic into
a fresh collection, and the serving alias switches to it once it has caught up. The topic is compacted and keyed by
collection, so its latest record per pipeline is the registry.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.fields import utc_now

# Milvus collection names: a letter or underscore, then letters, digits and underscores (also valid in topic names).
COLLECTION_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,200}$"


class PipelineState(StrEnum):
    """Where a pipeline is in its life."""

    BUILDING = "building"  # replaying into its collection; not served yet
    SERVING = "serving"  # the alias points at its collection
    STANDBY = "standby"  # served before; kept current for a rollback until pruned
    RETIRED = "retired"  # abandoned or pruned: its workers stop, its collection is dropped


class PipelineSpec(BaseModel):
    """One indexing pipeline: its collection, how it chunks and embeds, and its state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    collection: str = Field(pattern=COLLECTION_PATTERN, description="Milvus collection it writes into; its name.")
    state: PipelineState
    default: bool = Field(
        False, description="The deployment's first pipeline: its topics and consumer groups carry no pipeline name."
    )
    chunk_tokens: int = Field(ge=16, description="RAGBUS_CHUNK_TOKENS of its chunker.")
    chunk_overlap: int = Field(ge=0, description="RAGBUS_CHUNK_OVERLAP of its chunker.")
    title_tokens: int = Field(ge=0, description="RAGBUS_CHUNK_TITLE_TOKENS of its chunker.")
    model: str = Field(min_length=1, description="RAGBUS_EMBED_MODEL of its embedder.")
    previous: str | None = Field(None, description="Collection that served when this pipeline was started.")
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> PipelineSpec:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk overlap ({self.chunk_overlap}) must be smaller than chunk tokens ({self.chunk_tokens})"
            )
        return self

    def moved_to(self, state: PipelineState) -> PipelineSpec:
        """This spec in another state."""
        return self.model_copy(update={"state": state, "updated_at": utc_now()})
