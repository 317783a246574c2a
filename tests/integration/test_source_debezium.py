"""`ragbus source debezium` on the real broker: c, u, d, r and tombstones, with and without the schema envelope,
malformed envelopes dead-lettered with a reason, offsets committed so a restart publishes nothing twice."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics
from ragbus.source_registry import announced_sources
from ragbus.stack.process import ManagedProcess
from schemas.dead_letter import DeadLetterHeaders
from schemas.topics import Topics
from tests.debezium_records import change, key
from tests.pipeline_helpers import chunks_of, wait_indexed
from tests.stack_fixtures import Pipeline
from tests.topic_reader import TopicReader

pytestmark = [pytest.mark.integration, pytest.mark.one_engine, pytest.mark.slow]


def produce(pipeline: Pipeline, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    async def send() -> None:
        settings = pipeline.settings
        await ensure_topics(settings, [topic])
        async with KafkaEventProducer(settings) as producer:
            await producer.send_all([OutboundMessage(topic, k, v) for k, v in records])

    asyncio.run(send())


def start_source(pipeline: Pipeline, topic: str, home: Path) -> ManagedProcess:
    log = home / "debezium.log"
    consuming = log.read_text().count("debezium: consuming") if log.exists() else 0
    process = ManagedProcess(
        "source-debezium",
        [sys.executable, "-m", "ragbus", "source", "debezium", "--topic", topic,
         "--id", "id", "--title", "title", "--text", "body"],
        log,
        env=pipeline.env,
    ).start()  # fmt: skip
    process.wait_ready(lambda: log.read_text().count("debezium: consuming") > consuming, timeout_s=60)
    return process


def test_change_topic_becomes_document_events(pipeline: Pipeline, tmp_path: Path) -> None:
    topic = f"dbserver1.public.articles.{uuid.uuid4().hex[:6]}"
    documents = TopicReader(pipeline.settings)
    dead = TopicReader(pipeline.settings, Topics(pipeline.settings.kafka.topic_prefix).dead_letter("source-debezium"))
    a = {"id": 9001, "title": "Kelp", "body": "Giant kelp forests shelter sea otters and urchins."}
    b = {"id": 9002, "title": "Krill", "body": "Antarctic krill swarm in the Southern Ocean."}
    a2 = {**a, "body": "Giant kelp can grow half a metre a day in cold water."}
    produce(
        pipeline,
        topic,
        [
            (key(9001, with_schema=True), change("r", None, a, 1000, with_schema=True)),
            (key(9002, with_schema=False), change("c", None, b, 2000, with_schema=False)),
            (key(9001, with_schema=True), change("u", a, a2, 3000, with_schema=True)),
            (key(9002, with_schema=False), change("d", b, None, 4000, with_schema=False)),
            (key(9002, with_schema=False), None),  # tombstone
            (b"{}", b"not json at all"),
            (b"{}", b'{"schema": {}, "payload": {"op": "x", "after": {}}}'),
            (key(9003, with_schema=False), change("c", None, {"title": "no id"}, 5000, with_schema=False)),
        ],
    )  # fmt: skip
    source = start_source(pipeline, topic, tmp_path)
    try:
        events = sorted(documents.wait_events(4), key=lambda e: e.version)
        assert [(e.op.value, e.doc_id, e.version) for e in events] == [
            ("upsert", "9001", 1000),
            ("upsert", "9002", 2000),
            ("upsert", "9001", 3000),
            ("delete", "9002", 4000),
        ]
        letters = [DeadLetterHeaders.from_kafka(r.headers) for r in _wait_records(dead, 3)]
        reasons = sorted(f"{letter.error_code}: {letter.error}" for letter in letters)
        assert len(reasons) == 3
        assert reasons[0].startswith("invalid_envelope: not a Debezium change envelope (op 'x'")
        assert reasons[1].startswith("invalid_envelope: record value is not JSON")
        assert reasons[2].startswith("missing_id: row has no field 'id'")
        assert all(letter.topic == topic and letter.stage == "source-debezium" for letter in letters)

        wait_indexed(pipeline, {("default", "9001"): 3000, ("default", "9002"): None})
        assert {c["version"] for c in chunks_of(pipeline, "9001")} == {3000}

        # `ragbus status` lists the running source; a clean stop removes it.
        [announced] = [s for s in asyncio.run(announced_sources(pipeline.settings)) if topic in s.heartbeat.follows]
        assert announced.heartbeat.source == "debezium" and not announced.stale
        source.stop()
        assert not [s for s in asyncio.run(announced_sources(pipeline.settings)) if topic in s.heartbeat.follows]
        documents = TopicReader(pipeline.settings)
        c = {"id": 9004, "title": "Squid", "body": "Humboldt squid hunt in packs."}
        produce(pipeline, topic, [(key(9004, with_schema=False), change("c", None, c, 6000, with_schema=False))])
        source = start_source(pipeline, topic, tmp_path)
        assert [(e.doc_id, e.version) for e in documents.wait_events(1)] == [("9004", 6000)]  # nothing re-published
    finally:
        source.stop()


def _wait_records(reader: TopicReader, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    deadline = time.monotonic() + 60
    while len(records := reader.records()) < count and time.monotonic() < deadline:
        time.sleep(0.3)
    return records
