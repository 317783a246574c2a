"""Headers a dead-lettered message carries; its value is the original payload, byte for byte."""

from __future__ import annotations

import orjson
from pydantic import BaseModel, ConfigDict, Field


class DeadLetterHeaders(BaseModel):
    """Why a stage gave up on a message, and where it came from."""

    model_config = ConfigDict(frozen=True)

    stage: str = Field(description="Worker that rejected the message.")
    error_code: str = Field(description="Stable code of the error.")
    error: str = Field(description="Readable reason.")
    topic: str = Field(description="Topic the message was read from.")
    partition: int
    offset: int

    def to_kafka(self) -> list[tuple[str, bytes]]:
        """As Kafka headers (prefixed `dlq.`)."""
        return [(f"dlq.{name}", str(value).encode()) for name, value in self.model_dump().items()]

    @classmethod
    def from_kafka(cls, headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...]) -> DeadLetterHeaders:
        """Read back what to_kafka wrote."""
        fields = {k.removeprefix("dlq."): v.decode() for k, v in headers if k.startswith("dlq.")}
        return cls.model_validate(fields)


def original_event_id(value: bytes | None) -> str | None:
    """The `event_id` field of a dead letter's original payload (every stage's message carries its document event's
    id at the top level); None when the payload is not a JSON object with one (a malformed message)."""
    if value is None:
        return None
    try:
        original = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    event_id = original.get("event_id") if isinstance(original, dict) else None
    return event_id if isinstance(event_id, str) else None
