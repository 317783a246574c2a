"""`ragbus dlq quarantine`: ask a stage's workers to dead-letter one record, the one a partition is stuck on.

The request is a record on the compacted quarantine topic, not a change of the consumer group's offsets (which
Kafka refuses while the group has members, and which would skip the record silently). The worker owning the
partition dead-letters the record unprocessed with the operator's reason and commits past it
(workers.quarantine_watch); `ragbus dlq replay` brings it back after a fix.
"""

from __future__ import annotations

from ragbus.errors import InputError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics, group_offsets
from ragbus.pipelines import resolve_pipeline
from ragbus.settings import Settings
from schemas.codec import encode
from schemas.quarantine import QuarantineRequest
from schemas.topics import Lane, Topics


async def quarantine_record(
    settings: Settings,
    stage: str,
    partition: int,
    offset: int | None = None,
    reason: str | None = None,
    *,
    lane: Lane = Lane.LIVE,
) -> QuarantineRequest:
    """Publish a quarantine request for `offset` (default: the partition's head, what the stage's group has not
    committed yet) of the stage's input topic in `lane`; returns it once the broker confirmed it."""
    pipeline = await resolve_pipeline(settings)
    topic = pipeline.names.input_topic(stage, lane)
    group = pipeline.names.group(stage) + settings.worker.group_suffix
    offsets = await group_offsets(settings, group, topic)
    if partition not in offsets:
        raise InputError(f"{topic} has no partition {partition} (partitions: {sorted(offsets)})")
    committed, end = offsets[partition]
    if offset is None:
        if committed >= end:
            raise InputError(
                f"{stage} has processed everything on {topic} partition {partition} (offset {end}): nothing to "
                "quarantine"
            )
        offset = committed
    elif not 0 <= offset < end:
        raise InputError(f"{topic} partition {partition} has no offset {offset} (end offset {end})")
    request = QuarantineRequest(
        stage=stage,
        topic=topic,
        partition=partition,
        offset=offset,
        **({"reason": reason} if reason else {}),
    )
    topics = Topics(settings.kafka.topic_prefix)
    await ensure_topics(settings, [topics.quarantine], compacted=[topics.quarantine])
    async with KafkaEventProducer(settings) as producer:
        await producer.send_all([OutboundMessage(topics.quarantine, request.key, encode(request))])
    return request
