"""Contract of the sources topic: each running change source's heartbeat, keyed by instance (compacted).

A source that stops cleanly writes a tombstone for its key; one that was killed leaves its last heartbeat,
which readers show as stale once `seen_at` is older than a few intervals.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

HEARTBEAT_INTERVAL_S = 10.0


class SourceHeartbeat(BaseModel):
    """A change source is alive and this is what it did so far."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = Field(1, description="Contract version of this message.")
    source: str = Field(description="Kind of source.", examples=["postgres", "watch", "debezium"])
    instance: str = Field(description="host:pid of the process; the record key.", examples=["node-1:4211"])
    follows: str = Field(description="What it follows.", examples=["table public.articles (slot ragbus_articles)"])
    started_at: datetime = Field(description="When the process started.")
    seen_at: datetime = Field(description="When this heartbeat was written.")
    events: int = Field(0, ge=0, description="Document events published (broker-confirmed) since start.")
    last_change_at: datetime | None = Field(None, description="When the source last saw a change.")
