"""Contract of the quarantine topic: an operator's request that a stage dead-letter one record unprocessed."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.bounds import Line
from schemas.fields import utc_now


class QuarantineRequest(BaseModel):
    """`ragbus dlq quarantine`: the stage's worker dead-letters this record instead of processing it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(1, description="Contract version of this message.")
    stage: Literal["extractor", "chunker", "embedder", "indexer"] = Field(
        description="Stage whose input holds the record."
    )
    topic: str = Field(description="The stage's input topic.", examples=["ragbus.embedded.v1"])
    partition: int = Field(ge=0)
    offset: int = Field(ge=0, description="Offset of the record (the partition's head when it was requested).")
    reason: Line = Field("quarantined by an operator", max_length=500, description="Why; goes into the dead letter.")
    requested_at: datetime = Field(default_factory=utc_now)

    @property
    def key(self) -> bytes:
        """Kafka key: one request per record (compaction keeps the latest)."""
        return f"{self.stage}/{self.topic}/{self.partition}/{self.offset}".encode()
