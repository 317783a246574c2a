"""`ragbus replay` resets a consumer group on real tansu: refused under live consumers, then from the beginning,
to a given offset, from a timestamp; the restarted worker reprocesses exactly that and the index stays exact.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ragbus.kafka_clients import group_offsets
from ragbus.milvus.store import MilvusChunkStore
from schemas.topics import Topics
from tests.corpus import ANIMALS, animal_document
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def replay(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **pipeline.env, "RAGBUS_STACK_HOME": str(pipeline.home / "no-stack")}
    settings = pipeline.settings
    target = [
        "--topic",
        Topics(settings.kafka.topic_prefix).documents,
        "--group",
        f"{settings.kafka.topic_prefix}.chunker",
    ]
    return subprocess.run(
        [sys.executable, "-m", "ragbus", "replay", *target, *args], check=False, cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def committed(pipeline: Pipeline) -> dict[int, tuple[int, int]]:
    settings = pipeline.settings
    group = f"{settings.kafka.topic_prefix}.chunker"
    return asyncio.run(group_offsets(settings, group, Topics(settings.kafka.topic_prefix).documents))


def test_replay_resets_the_chunker_group_and_the_worker_reprocesses_exactly_that(
    base_servers: dict[str, str], stack_home: Path
) -> None:
    pipeline = Pipeline(
        env=pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"]), home=stack_home
    )
    animals = list(ANIMALS)
    try:
        pipeline.start_workers()
        wait_indexed(pipeline, dict(publish(pipeline, [animal_document(a) for a in animals[:6]])))
        time.sleep(1.0)
        between = datetime.now(UTC)
        time.sleep(1.0)
        wait_indexed(pipeline, dict(publish(pipeline, [animal_document(a) for a in animals[6:9]])))
        pipeline.wait_drained()
        settings = pipeline.settings
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        chunks_before = store.count_chunks()

        refused = replay(pipeline, "--from-beginning")
        assert refused.returncode == 1
        assert "lists 1 member(s): stop its consumers first" in refused.stderr
        assert sum(end - done for done, end in committed(pipeline).values()) == 0  # nothing was reset

        pipeline.worker("chunker").stop(timeout_s=10)
        result = replay(pipeline, "--from-beginning", "--force")
        assert result.returncode == 0, result.stderr
        assert "reset on 3 partition(s)" in result.stdout
        offsets = committed(pipeline)
        assert all(done == 0 for done, _ in offsets.values())
        assert sum(end for _, end in offsets.values()) == 9

        first = next(p for p, (_, end) in offsets.items() if end > 0)
        to_offset = replay(pipeline, "--to-offset", f"{first}:1", "--force")
        assert to_offset.returncode == 0, to_offset.stderr
        assert committed(pipeline)[first][0] == 1
        past_end = replay(pipeline, "--to-offset", f"{first}:999", "--force")
        assert past_end.returncode == 1 and "past the end" in past_end.stderr
        no_tz = replay(pipeline, "--from-timestamp", "2026-01-01T00:00:00", "--force")
        assert no_tz.returncode != 0

        from_time = replay(pipeline, "--from-timestamp", between.strftime("%Y-%m-%dT%H:%M:%S%z"), "--force")
        assert from_time.returncode == 0, from_time.stderr
        pending = sum(end - done for done, end in committed(pipeline).values())
        assert pending == 3  # only the events published after `between`

        pipeline.start_worker("chunker")
        pipeline.wait_drained()
        assert pipeline.metric("chunker", "ragbus_stage_messages_total") == 3
        assert store.count_chunks() == chunks_before  # reprocessing replaced chunks, never duplicated them
        store.close()
    finally:
        pipeline.stop_workers()
