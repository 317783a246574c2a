"""document_status: where one document stands: what the index holds, versions still in flight, the last rejection.

In flight is read from Kafka without joining any group: for each stage, the records of the document's partition of
the stage's input topic past the stage's committed offset (work the stage has not finished). That reads the backlog
of one partition per stage, so it is capped (`scan_limit` records per stage; `scan_capped` says when the cap cut a
scan short). A version a worker is processing right now still counts as in flight at that stage until committed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from ragbus.dead_letters import list_dead_letters
from ragbus.document_follower import whole_version_before
from ragbus.errors import TransientError
from ragbus.kafka_clients import group_offsets, start_client
from ragbus.kafka_security import kafka_connection
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings
from schemas.documents import document_key
from schemas.topics import STAGES, PipelineTopics, Topics

SCAN_LIMIT = 20_000
EMPTY_FETCHES = 5


@dataclass(frozen=True)
class InFlight:
    """A version published but not yet through `stage` (the stage whose input topic holds it unconsumed)."""

    version: int
    stage: str
    deleted: bool


@dataclass(frozen=True)
class Rejection:
    """The dead letter of the document's latest event, when a stage rejected it."""

    stage: str
    version: int | None
    error_code: str
    error: str


@dataclass(frozen=True)
class Arriving:
    """A version that travels in parts (ragbus.record_parts) and is not whole yet: `indexed` of its `total` chunks
    are in the index. Until all are, the version before it is the indexed one."""

    version: int
    indexed: int
    total: int


@dataclass
class DocumentStatus:
    """One document of one tenant; `searchable_since` is not recorded by the index (None)."""

    tenant: str
    doc_id: str
    indexed_version: int | None = None
    deleted: bool = False
    chunks: int = 0
    in_flight: list[InFlight] = field(default_factory=list)
    dead_letter: Rejection | None = None
    scan_capped: bool = False
    arriving: Arriving | None = None

    @property
    def known(self) -> bool:
        """Whether anything of the document was found (indexed, deleted, arriving, in flight or rejected)."""
        found = self.indexed_version is not None or self.arriving is not None
        return found or bool(self.in_flight) or self.dead_letter is not None


def _version(value: bytes | None) -> tuple[int | None, bool]:
    try:
        raw = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return None, False
    if not isinstance(raw, dict) or not isinstance(raw.get("version"), int):
        return None, False
    return raw["version"], raw.get("op") == "delete"


def indexed_state(store: MilvusChunkStore, status: DocumentStatus) -> None:
    """Fill the indexed version, whether it is a delete, and its searchable chunk count (blocking)."""
    collection = store.alias_target()
    if collection is None:
        return
    state = (
        MilvusDocumentStates(store)
        .get(collection, [(status.tenant, status.doc_id)])
        .get((status.tenant, status.doc_id))
    )
    if state is None:
        return
    indexed, deleted = state.version, state.deleted
    total = (state.chunks or {}).get(state.version)
    counted: dict[int, int] = {}  # chunks of a version in the collection, each version counted once
    if state.parts_pending and not state.deleted and total is not None:
        # The state's version arrives in parts: the state names its whole chunk count, and the versions before it.
        # (The mark can outlive its version for a moment: a delete or a whole version then settles the state.)
        arrived = counted[state.version] = store.count_document_chunks(status.tenant, status.doc_id, state.version)
        if arrived < total:
            status.arriving = Arriving(state.version, arrived, total)
            whole = whole_version_before(store, state)
            if whole is None:
                return
            indexed = whole
    status.indexed_version, status.deleted = indexed, deleted
    if indexed not in counted:
        counted[indexed] = store.count_document_chunks(status.tenant, status.doc_id, indexed)
    status.chunks = counted[indexed]  # 0 where none of its chunks is searchable (a delete)


async def _unconsumed(settings: Settings, topic: str, group: str, key: bytes, limit: int) -> tuple[list[bytes], bool]:
    offsets = await group_offsets(settings, group, topic)
    if not offsets:
        return [], False
    partition = DefaultPartitioner()(key, sorted(offsets), sorted(offsets))
    committed, end = offsets[partition]
    start = max(committed, end - limit)
    if start >= end:  # the stage is done with this partition
        return [], False
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(**kafka_connection(settings), group_id=None, enable_auto_commit=False)
    await start_client(settings, consumer)
    values: list[bytes] = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        empty = 0
        while await consumer.position(tp) < end and empty < EMPTY_FETCHES:
            records = (await consumer.getmany(tp, timeout_ms=2000)).get(tp, [])
            empty = 0 if records else empty + 1  # a broker that returns nothing for long: stop, do not hang
            values += [r.value for r in records if r.offset < end and r.key == key and r.value is not None]
        return values, start > committed
    finally:
        # Let the consumer's own start-up task run once: stopping it before then raises CancelledError (aiokafka).
        await asyncio.sleep(0)
        await consumer.stop()


async def in_flight(settings: Settings, status: DocumentStatus, limit: int = SCAN_LIMIT) -> None:
    """Fill the versions newer than the indexed one that a stage has not committed yet, by stage."""
    pipeline = PipelineTopics(Topics(settings.kafka.topic_prefix))
    key = document_key(status.tenant, status.doc_id)
    seen: set[int] = set()
    inputs = [(stage, topic) for stage in STAGES for topic in pipeline.input_topics(stage)]  # both lanes
    scans = await asyncio.gather(  # each scan starts Kafka clients of its own: all stages and lanes at once
        *(_unconsumed(settings, topic, pipeline.group(stage), key, limit) for stage, topic in inputs)
    )
    for (stage, _), (values, capped) in zip(inputs, scans, strict=True):
        status.scan_capped |= capped
        for value in values:
            version, deleted = _version(value)
            newer = version is not None and (status.indexed_version is None or version > status.indexed_version)
            if version is not None and newer and version not in seen:
                seen.add(version)
                status.in_flight.append(InFlight(version, stage, deleted))


async def last_rejection(settings: Settings, status: DocumentStatus) -> None:
    """Fill the newest unreplayed dead letter of the document, if no newer version was indexed since."""
    key = document_key(status.tenant, status.doc_id)
    stage_letters = await asyncio.gather(*(list_dead_letters(settings, stage) for stage in STAGES))
    for stage, letters in zip(STAGES, stage_letters, strict=True):
        for letter in letters:
            if letter.key != key or letter.replayed:
                continue
            version, _ = _version(letter.value)
            if status.indexed_version is not None and (version is None or version <= status.indexed_version):
                continue
            if status.dead_letter is None or (version or 0) >= (status.dead_letter.version or 0):
                status.dead_letter = Rejection(stage, version, letter.reason.error_code, letter.reason.error)


async def document_status(settings: Settings, store: MilvusChunkStore, tenant: str, doc_id: str) -> DocumentStatus:
    """Everything known of `tenant`'s document `doc_id`: indexed state, in-flight versions, last rejection."""
    status = DocumentStatus(tenant, doc_id)
    await asyncio.to_thread(indexed_state, store, status)
    try:
        await asyncio.gather(in_flight(settings, status), last_rejection(settings, status))
    except (KafkaError, OSError) as exc:
        raise TransientError(f"Kafka unavailable: {exc}") from exc
    return status
