"""An event that fails transiently for ever is dead-lettered after its budget, and an operator can quarantine the
event at a partition's head while the stack runs (`ragbus dlq quarantine`), on real tansu and Milvus."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from ragbus import metrics
from ragbus.dead_letters import list_dead_letters
from ragbus.errors import TransientError
from ragbus.kafka_clients import KafkaEventProducer, ensure_topics, group_offsets
from ragbus.settings import Settings, load_settings
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from ragbus.stack.servers import start_milvus_lite
from schemas.documents import DocumentEvent, document_key
from schemas.topics import Topics
from tests.pipeline_helpers import chunks_of, publish, wait_indexed
from tests.stack_fixtures import Pipeline, environment, pipeline_env, wait_for
from workers.runtime import Inbound, Rejected, StageRunner

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class CursedHandler:
    """A stage that fails transiently whenever a batch holds the cursed document, as a store would that times out
    on one value; its stores answer unless told they are down."""

    stage = "chunker"

    def __init__(self) -> None:
        self.stores_up = True
        self.processed: list[str] = []

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> str:
        return str(orjson.loads(record.value)["doc_id"])

    def chunks_in(self, value: str) -> int:
        return 0

    async def process(self, batch: list[Inbound[str]]) -> list[Rejected]:
        if any(item.value == "cursed" for item in batch):
            raise TransientError("the store timed out on this value")
        self.processed += [item.value for item in batch]
        return []

    async def stores_answer(self) -> bool:
        return self.stores_up


def _records(settings: Settings, doc_ids: list[str]) -> list[ConsumerRecord[bytes, bytes]]:
    topic = Topics(settings.kafka.topic_prefix).documents

    async def roundtrip() -> list[ConsumerRecord[bytes, bytes]]:
        await ensure_topics(settings, Topics(settings.kafka.topic_prefix).all())
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        await producer.start()
        try:
            for doc_id in doc_ids:
                await producer.send_and_wait(topic, key=doc_id.encode(), value=orjson.dumps({"doc_id": doc_id}),
                                             partition=0)  # fmt: skip
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            records: list[ConsumerRecord[bytes, bytes]] = []
            while len(records) < len(doc_ids):
                records += (await consumer.getmany(tp, timeout_ms=2000)).get(tp, [])
            return records
        finally:
            await consumer.stop()

    return asyncio.run(roundtrip())


def test_a_transient_failure_of_one_event_is_dead_lettered_after_its_budget_only_while_stores_answer(
    base_servers: dict[str, str],
) -> None:
    env = pipeline_env(
        base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"],
        RAGBUS_WORKER_MAX_TRANSIENT_ATTEMPTS="3", RAGBUS_WORKER_RETRY_BUDGET_S="0.1",
    )  # fmt: skip
    with environment(env):
        settings = load_settings()
    records = _records(settings, ["first", "cursed", "last"])
    handler = CursedHandler()
    given_up = metrics.TRANSIENT_GIVEN_UP.labels("chunker")._value.get()

    async def consume(runner: StageRunner[str], polls: int) -> int:
        """Poll the batch again after each failure, as the consumer's seek back does; returns the polls made."""
        for poll in range(1, polls + 1):
            try:
                await runner.run_batch(records, lambda _tp, _offset: None)
                return poll
            except TransientError:
                continue
        return polls

    async def scenario() -> tuple[int, list[str], int]:
        async with KafkaEventProducer(settings) as producer:
            runner = StageRunner(handler, producer, settings)
            handler.stores_up = False  # a store is down: backpressure as long as it lasts, nothing dead-lettered
            down = await consume(runner, 12)
            processed_while_down = list(handler.processed)
            handler.stores_up = True
            return down, processed_while_down, await consume(runner, 30)

    down_polls, processed_while_down, polls = asyncio.run(scenario())
    assert down_polls == 12 and processed_while_down == []
    assert polls < 30
    assert set(handler.processed) == {"first", "last"}
    [letter] = asyncio.run(list_dead_letters(settings, "chunker"))
    assert letter.key == b"cursed" and letter.reason.error_code == "transient_budget_exhausted"
    assert letter.value == b'{"doc_id":"cursed"}'
    assert "RAGBUS_WORKER_MAX_TRANSIENT_ATTEMPTS=3" in letter.reason.error
    assert letter.reason.error.count("the store timed out on this value") >= 3 + 12, "the whole history"
    assert "(a store was down)" in letter.reason.error
    assert metrics.TRANSIENT_GIVEN_UP.labels("chunker")._value.get() == given_up + 1


def _stuck_partition(settings: Settings) -> int | None:
    topic = Topics(settings.kafka.topic_prefix).embedded
    offsets = asyncio.run(group_offsets(settings, f"{settings.kafka.topic_prefix}.indexer", topic))
    return next((p for p, (committed, end) in offsets.items() if committed < end), None)


def test_an_operator_quarantines_the_event_a_running_indexer_is_stuck_on(
    base_servers: dict[str, str], stack_home: Path, tmp_path: Path
) -> None:
    milvus_port = free_port()
    milvus: ManagedProcess = start_milvus_lite(tmp_path, milvus_port)
    env = pipeline_env(base_servers["kafka"], f"http://127.0.0.1:{milvus_port}", base_servers["redis"])
    pipeline = Pipeline(env=env, home=stack_home)
    try:
        pipeline.start_workers()
        stuck = DocumentEvent(doc_id="stuck.md", text="The walrus hauls out on the ice.")
        milvus.stop()  # the indexer can never write it: it retries, and its partition waits
        publish(pipeline, [stuck])

        def stuck() -> bool:
            # Retrying it, not merely not yet assigned its partition (the group may still be joining).
            try:
                retrying = pipeline.metric("indexer", "ragbus_stage_transient_retries_total") > 0
            except OSError:  # its /metrics not up yet
                return False
            return retrying and _stuck_partition(pipeline.settings) is not None

        wait_for(stuck, timeout_s=180, message="indexer stuck")
        partition = _stuck_partition(pipeline.settings)

        command = [sys.executable, "-m", "ragbus", "dlq", "quarantine", "--stage", "indexer",
                   "--partition", str(partition), "--reason", "walrus blocks the partition"]  # fmt: skip
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=120,
            env={**os.environ, **pipeline.env, "RAGBUS_STACK_HOME": str(tmp_path)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"[{partition}]@" in done.stdout

        def quarantined() -> list[object]:
            letters = asyncio.run(list_dead_letters(pipeline.settings, "indexer"))
            return [x for x in letters if x.key == document_key("default", "stuck.md")]

        wait_for(quarantined, timeout_s=180, interval_s=1, message="the quarantined event dead-lettered")
        [letter] = quarantined()
        assert letter.reason.error_code == "quarantined"  # type: ignore[attr-defined]
        assert "walrus blocks the partition" in letter.reason.error  # type: ignore[attr-defined]
        wait_for(lambda: _stuck_partition(pipeline.settings) is None, timeout_s=60, message="committed past it")

        milvus = start_milvus_lite(tmp_path, milvus_port)
        after = DocumentEvent(doc_id="after.md", text="The puffin nests in burrows.")
        wait_indexed(pipeline, dict(publish(pipeline, [after])))
        assert chunks_of(pipeline, "stuck.md") == []
        assert pipeline.metric("indexer", "ragbus_quarantined_total") == 1
    finally:
        pipeline.stop_workers()
        stop_all([milvus], timeout_s=10)
