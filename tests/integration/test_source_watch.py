"""`ragbus watch`: live creates, edits, renames and deletes; 200 files at once; a restart publishes exactly what
changed while it was down; and one file end to end through the pipeline."""

from __future__ import annotations

import signal
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from ragbus.stack.process import ManagedProcess, free_port
from schemas.documents import DocumentEvent
from tests.pipeline_helpers import chunks_of, wait_indexed
from tests.stack_fixtures import Pipeline, environment
from tests.topic_reader import TopicReader

pytestmark = [pytest.mark.integration, pytest.mark.one_engine, pytest.mark.slow]


def start_watch(env: dict[str, str], folder: Path, home: Path, metrics_port: int = 0) -> ManagedProcess:
    log = home / "watch.log"
    watching = log.read_text().count("watch: watching") if log.exists() else 0
    process = ManagedProcess(
        "source-watch",
        [sys.executable, "-m", "ragbus", "watch", str(folder), "--manifest", str(home / "manifest.json")],
        log,
        env={**env, "RAGBUS_SOURCE_METRICS_PORT": str(metrics_port)},
    ).start()
    process.wait_ready(lambda: log.read_text().count("watch: watching") > watching, timeout_s=60)
    return process


@pytest.fixture
def own_topics(pipeline: Pipeline) -> dict[str, str]:
    """The pipeline's broker, under a prefix no worker consumes: only the watcher's events are there."""
    return {**pipeline.env, "RAGBUS_KAFKA_TOPIC_PREFIX": f"w{uuid.uuid4().hex[:8]}"}


def reader(env: dict[str, str]) -> TopicReader:
    from ragbus.settings import load_settings

    with environment(env):
        return TopicReader(load_settings())


def summary(events: list[DocumentEvent]) -> list[tuple[str, str]]:
    return sorted((e.op.value, Path(e.doc_id).name) for e in events)


def metric(port: int, line_start: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start))


def test_create_modify_rename_delete_and_editor_temp_files(own_topics: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    port = free_port()
    watcher = start_watch(own_topics, folder, tmp_path, metrics_port=port)
    try:
        topic = reader(own_topics)
        (folder / "a.md").write_text("# Alpha\nfirst text")
        (folder / ".a.md.swp").write_text("vim swap")
        (folder / "a.md~").write_text("backup")
        assert summary(topic.wait_events(1)) == [("upsert", "a.md")]

        topic = reader(own_topics)
        for n in range(5):  # rapid saves: debounced, and only the last content matters
            (folder / "a.md").write_text(f"# Alpha\nedit {n}")
        events = topic.wait_events(1)
        time.sleep(1.5)  # let any straggler batch land before asserting nothing else came
        events = topic.events()
        assert summary(events)[-1] == ("upsert", "a.md") and len(events) <= 2
        assert events[-1].text.endswith("edit 4")

        topic = reader(own_topics)
        (folder / "a.md").rename(folder / "b.md")
        assert summary(topic.wait_events(2)) == [("delete", "a.md"), ("upsert", "b.md")]

        topic = reader(own_topics)
        (folder / "b.md").unlink()
        assert summary(topic.wait_events(1)) == [("delete", "b.md")]

        # Health and /metrics like a worker's, and a clean stop on SIGTERM.
        assert metric(port, 'ragbus_source_events_total{op="upsert",source="watch"}') >= 3
        assert metric(port, 'ragbus_source_events_total{op="delete",source="watch"}') == 2
        assert metric(port, 'ragbus_source_last_change_timestamp_seconds{source="watch"}') > 0
        watcher.signal(signal.SIGTERM)
        assert watcher.wait_stopped(15) and watcher.proc and watcher.proc.returncode == 0
        assert "source watch stopped" in watcher.log_tail(5)
    finally:
        watcher.stop()


def test_two_hundred_files_at_once(own_topics: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    watcher = start_watch(own_topics, folder, tmp_path)
    try:
        topic = reader(own_topics)
        for n in range(200):
            (folder / f"note-{n:03}.txt").write_text(f"note number {n}")
        events = topic.wait_events(200)
        time.sleep(1.5)
        events = topic.events()
        assert sorted(Path(e.doc_id).name for e in events) == [f"note-{n:03}.txt" for n in range(200)]
    finally:
        watcher.stop()


def test_restart_publishes_exactly_what_changed_while_down(own_topics: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    folder.mkdir()
    for name in ("keep", "edit", "remove", "touch"):
        (folder / f"{name}.txt").write_text(f"{name} original")
    watcher = start_watch(own_topics, folder, tmp_path)
    watcher.stop()

    topic = reader(own_topics)
    (folder / "edit.txt").write_text("edit changed while down")
    (folder / "remove.txt").unlink()
    (folder / "new.txt").write_text("created while down")
    (folder / "touch.txt").write_text("touch original")  # saved again, same content: nothing to publish
    watcher = start_watch(own_topics, folder, tmp_path)
    try:
        events = topic.events()  # the catch-up is published before the watcher reports it is watching
        assert summary(events) == [("delete", "remove.txt"), ("upsert", "edit.txt"), ("upsert", "new.txt")]
    finally:
        watcher.stop()


def test_a_saved_file_reaches_the_index_and_its_delete_removes_it(pipeline: Pipeline, tmp_path: Path) -> None:
    folder = tmp_path / "indexed"
    folder.mkdir()
    watcher = start_watch(pipeline.env, folder, tmp_path)
    try:
        topic = reader(pipeline.env)
        (folder / "otters.md").write_text("# Otters\nSea otters hold hands while they sleep so they do not drift.")
        [event] = topic.wait_events(1)
        wait_indexed(pipeline, {(event.tenant, event.doc_id): event.version})
        assert chunks_of(pipeline, event.doc_id)

        (folder / "otters.md").unlink()
        wait_indexed(pipeline, {(event.tenant, event.doc_id): None})
        assert chunks_of(pipeline, event.doc_id) == []
    finally:
        watcher.stop()
