"""Reset a consumer group's committed offsets for targeted reprocessing (`ragbus replay`).

The reset joins the group itself, so it can commit only when it holds every partition: a live consumer would
otherwise keep its own position and overwrite the reset. Members the broker still lists are refused unless
forced (some brokers, like the embedded tansu, keep listing members that have left).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from ragbus.errors import InputError
from ragbus.kafka_clients import end_offsets, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayFrom:
    """Where the group resumes: the beginning, the first record at or after a time, or given offsets."""

    beginning: bool = False
    timestamp: datetime | None = None
    offsets: dict[int, int] = field(default_factory=dict)  # partition -> offset; other partitions unchanged

    def __post_init__(self) -> None:
        chosen = sum([self.beginning, self.timestamp is not None, bool(self.offsets)])
        if chosen != 1:
            raise InputError("give exactly one of --from-beginning, --from-timestamp or --to-offset")
        if self.timestamp is not None and self.timestamp.tzinfo is None:
            raise InputError("--from-timestamp needs a timezone, e.g. 2026-11-25T10:00:00+00:00")


def parse_offsets(values: list[str]) -> dict[int, int]:
    """`P:O` strings → {partition: offset}."""
    parsed: dict[int, int] = {}
    for value in values:
        partition, sep, offset = value.partition(":")
        if not sep or not partition.isdigit() or not offset.isdigit():
            raise InputError(f"--to-offset {value!r}: expected PARTITION:OFFSET, e.g. 0:1200")
        parsed[int(partition)] = int(offset)
    return parsed


async def listed_members(settings: Settings, group: str) -> int:
    """Members the broker lists for `group`."""
    admin = AIOKafkaAdminClient(**kafka_connection(settings))
    await start_client(settings, admin)
    try:
        described = await admin.describe_consumer_groups([group])
        return sum(len(g[5]) for response in described for g in response.groups)
    finally:
        await admin.close()


async def reset_group(
    settings: Settings, topic: str, group: str, target: ReplayFrom, *, force: bool = False, join_timeout_s: float = 20
) -> dict[int, tuple[int, int]]:
    """Commit the target offsets for `group` on `topic`; returns {partition: (old, new)} for what changed."""
    if not force and (members := await listed_members(settings, group)):
        raise InputError(
            f"consumer group {group} lists {members} member(s): stop its consumers first, or pass --force if they "
            "are stopped (the embedded tansu broker keeps listing members that have left)"
        )
    consumer = AIOKafkaConsumer(
        topic,
        **kafka_connection(settings),
        group_id=group,
        enable_auto_commit=False,
        # Short timeouts: if this member dies mid-join, the group does not wait minutes for it.
        session_timeout_ms=10_000,
        max_poll_interval_ms=10_000,
    )
    try:
        # Joining waits for the group's live members to rejoin; one busy in a long batch can hold it for minutes.
        await asyncio.wait_for(consumer.start(), timeout=join_timeout_s)
    except TimeoutError:
        await _leave(consumer, group)
        raise InputError(f"live consumers of group {group} did not give up their partitions: stop them first") from None
    try:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise InputError(f"topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await _end_offsets(settings, tps)
        await _await_full_assignment(consumer, set(tps), group, join_timeout_s)
        wanted = await _targets(settings, consumer, ends, target)
        old = {tp: (await consumer.committed(tp)) or 0 for tp in wanted}
        await consumer.commit({tp: OffsetAndMetadata(offset, "ragbus replay") for tp, offset in wanted.items()})
        log.info("group %s on %s reset: %s", group, topic, {tp.partition: o for tp, o in wanted.items()})
        return {tp.partition: (old[tp], offset) for tp, offset in wanted.items()}
    finally:
        await _leave(consumer, group)


async def _leave(consumer: AIOKafkaConsumer, group: str) -> None:
    try:
        # A join still waiting on live members can hold stop() for the whole rebalance timeout; the broker
        # drops this member after its session timeout anyway.
        await asyncio.wait_for(consumer.stop(), timeout=10)
    except TimeoutError:
        log.warning("left group %s without a clean LeaveGroup", group)


async def _await_full_assignment(
    consumer: AIOKafkaConsumer, tps: set[TopicPartition], group: str, timeout_s: float
) -> None:
    # Our join triggers a rebalance; a live member keeps some partitions, and only a full assignment is safe.
    deadline = time.monotonic() + timeout_s
    partial_since: float | None = None
    while time.monotonic() < deadline:
        # The consumer's coordinator joins in the background; fetching nothing keeps positions untouched.
        await asyncio.sleep(0.2)
        assigned = consumer.assignment()
        if assigned == tps:
            await asyncio.sleep(1.0)  # let a rebalance that is still under way show itself
            if consumer.assignment() == tps:
                return
        elif assigned:
            # Some partitions but not all, for a few seconds: the group has settled with live members in it.
            partial_since = partial_since or time.monotonic()
            if time.monotonic() - partial_since > 3.0:
                break
    held = sorted(tp.partition for tp in tps - consumer.assignment())
    raise InputError(f"live consumers of group {group} hold partitions {held}: stop them first, then replay")


async def _end_offsets(settings: Settings, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    # A consumer outside the group: reading the ends needs assign(), which a subscribed consumer cannot do.
    reader = AIOKafkaConsumer(**kafka_connection(settings), enable_auto_commit=False)
    await start_client(settings, reader)
    try:
        return await end_offsets(reader, tps)
    finally:
        await reader.stop()


async def _first_at_or_after(
    settings: Settings, hints: dict[TopicPartition, int], ends: dict[TopicPartition, int], ms: int
) -> dict[TopicPartition, int]:
    # Some brokers (the embedded tansu) answer a time lookup with the base offset of a batch that starts earlier:
    # read forward from there to the first record stamped at or after the time.
    reader = AIOKafkaConsumer(**kafka_connection(settings), enable_auto_commit=False)
    await start_client(settings, reader)
    exact: dict[TopicPartition, int] = {}
    try:
        for tp, hint in hints.items():
            reader.assign([tp])
            reader.seek(tp, hint)
            exact[tp], offset = ends[tp], hint
            while offset < ends[tp]:
                records = (await reader.getmany(tp, timeout_ms=2000, max_records=500)).get(tp, [])
                if not records:
                    break
                first = next((r.offset for r in records if r.timestamp >= ms), None)
                if first is not None:
                    exact[tp] = first
                    break
                offset = records[-1].offset + 1
    finally:
        await reader.stop()
    return exact


async def _targets(
    settings: Settings, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], target: ReplayFrom
) -> dict[TopicPartition, int]:
    tps = list(ends)
    if target.beginning:
        return dict(await consumer.beginning_offsets(tps))
    if target.timestamp is not None:
        ms = int(target.timestamp.timestamp() * 1000)
        found = await consumer.offsets_for_times(dict.fromkeys(tps, ms))
        hints = {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in tps}
        return await _first_at_or_after(settings, hints, ends, ms)
    wanted: dict[TopicPartition, int] = {}
    for partition, offset in target.offsets.items():
        tp = TopicPartition(tps[0].topic, partition)
        if tp not in ends:
            raise InputError(f"--to-offset: topic {tp.topic} has no partition {partition}")
        if offset > ends[tp]:
            raise InputError(f"--to-offset {partition}:{offset} is past the end of the partition ({ends[tp]})")
        wanted[tp] = offset
    return wanted
