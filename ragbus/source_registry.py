"""The change sources that announce themselves on the sources topic (`ragbus status`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from ragbus.kafka_clients import read_to_end, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.settings import Settings
from schemas.codec import decode
from schemas.fields import utc_now
from schemas.sources import HEARTBEAT_INTERVAL_S, SourceHeartbeat
from schemas.topics import Topics


@dataclass(frozen=True)
class AnnouncedSource:
    """A source's latest heartbeat; stale when it stopped announcing without saying goodbye (killed, or hung)."""

    heartbeat: SourceHeartbeat
    stale: bool

    def render(self, now: datetime) -> str:
        """One line for `ragbus status`."""
        beat = self.heartbeat
        state = f"stale (last seen {(now - beat.seen_at).total_seconds():.0f}s ago)" if self.stale else "running"
        change = f"last change {beat.last_change_at:%Y-%m-%d %H:%M:%S}Z" if beat.last_change_at else "no change yet"
        return f"{beat.source:<9} {state:<10} {beat.events} events, {change}  {beat.follows}  [{beat.instance}]"


async def announced_sources(settings: Settings) -> list[AnnouncedSource]:
    """Every source whose last word is a heartbeat (a cleanly stopped one left a tombstone)."""
    topic = Topics(settings.kafka.topic_prefix).sources
    consumer = AIOKafkaConsumer(**kafka_connection(settings), enable_auto_commit=False)
    await start_client(settings, consumer)
    latest: dict[bytes, bytes | None] = {}
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or set())]
        if not tps:
            return []
        for record in await read_to_end(consumer, tps):
            if record.key is not None:
                latest[record.key] = record.value
    finally:
        await consumer.stop()
    now = utc_now()
    beats = [decode(value, SourceHeartbeat) for value in latest.values() if value is not None]
    return [
        AnnouncedSource(b, (now - b.seen_at).total_seconds() > 3 * HEARTBEAT_INTERVAL_S)
        for b in sorted(beats, key=lambda b: (b.source, b.instance))
    ]
