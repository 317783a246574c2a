"""The publish and delete commands as a user runs them, and the Redis fallback of the launcher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from ragbus.stack.process import free_port, port_in_use, stop_all
from ragbus.stack.servers import start_redis
from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.one_engine]
ROOT = Path(__file__).resolve().parents[2]


def ragbus(pipeline: Pipeline, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **pipeline.env, "RAGBUS_STACK_HOME": str(cwd / "no-stack")}
    return subprocess.run(
        [sys.executable, "-m", "ragbus", *args], check=False, cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_publish_wait_then_delete_wait(pipeline: Pipeline, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "gardening.md").write_text("# Gardening\n\nTomatoes need six hours of sun a day.")
    (tmp_path / "notes" / "cooking.txt").write_text("Bread rises best in a warm kitchen.")
    published = ragbus(pipeline, "publish", "notes", "--wait", "--timeout", "120", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    assert "published 2 documents" in published.stdout
    assert "all 2 documents searchable" in published.stdout
    deleted = ragbus(pipeline, "delete", "notes/cooking.txt", "--wait", cwd=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert "published 1 deletes" in deleted.stdout
    assert "all 1 documents searchable" in deleted.stdout


def test_unreadable_input_fails_and_publishes_nothing(pipeline: Pipeline, tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("# Good\n\nFine text.")
    (tmp_path / "bad.jsonl").write_text('{"_id": "1", "text": "ok"}\n{"_id": 2, broken\n')
    result = ragbus(pipeline, "publish", "good.md", "bad.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert "bad.jsonl:2: not JSON" in result.stderr
    assert "nothing was published" in result.stderr
    missing = ragbus(pipeline, "publish", "nope/", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no such file or directory" in missing.stderr


def test_oversized_document_is_refused_before_sending(pipeline: Pipeline, tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("word " * 300_000)
    result = ragbus(pipeline, "publish", "big.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert "RAGBUS_KAFKA_MAX_MESSAGE_BYTES" in result.stderr
    assert "big.txt" in result.stderr


def test_launcher_starts_its_own_redis_when_none_answers(tmp_path: Path) -> None:
    port = free_port()
    process = start_redis(tmp_path, port)
    try:
        client = redis.Redis(port=port)
        assert client.ping()
        client.close()
    finally:
        stop_all([process], timeout_s=5)
    assert not port_in_use(port)


def test_status_shows_lag_dead_letters_and_the_index(pipeline: Pipeline, tmp_path: Path) -> None:
    from schemas.documents import DocumentEvent
    from tests.pipeline_helpers import publish, wait_indexed

    wait_indexed(pipeline, dict(publish(pipeline, [DocumentEvent(doc_id="status.md", text="Status check.")])))
    pipeline.wait_drained()
    result = ragbus(pipeline, "status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for stage in ("chunker", "embedder", "indexer"):
        row = next(line for line in lines if line.startswith(stage))
        assert row.split()[1] == "0", row  # drained: no lag
    alias = pipeline.settings.milvus.alias
    assert f"alias {alias} -> {alias}_v1" in result.stdout
    assert "chunks" in result.stdout
    assert "missing" not in result.stdout  # every topic exists, and each shows its partitions and offsets
