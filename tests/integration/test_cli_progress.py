"""What `ragbus publish [--wait]` shows while it works: plain lines when captured, a bar on a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.one_engine, pytest.mark.slow]


@pytest.fixture
def lite_pipeline(request: pytest.FixtureRequest, engine: str, base_servers: dict[str, str]) -> Pipeline:
    """The shared pipeline on milvus-lite (what is shown does not depend on the engine)."""
    if engine != base_servers["milvus-lite"]:
        pytest.skip("CLI output is engine-independent; covered on milvus-lite")
    pipeline: Pipeline = request.getfixturevalue("pipeline")
    return pipeline


def _env(pipeline: Pipeline, cwd: Path) -> dict[str, str]:
    return {**os.environ, **pipeline.env, "RAGBUS_STACK_HOME": str(cwd / "no-stack")}


def _ragbus(pipeline: Pipeline, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragbus", *args],
        check=False,
        cwd=cwd,
        env=_env(pipeline, cwd),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _write_notes(folder: Path, count: int) -> None:
    folder.mkdir()
    for n in range(count):
        (folder / f"note-{n}.md").write_text(f"# Note {n}\n\nThe progress note number {n} mentions lanterns.")


def test_publish_wait_shows_files_events_bytes_and_names_dead_lettered_documents(
    lite_pipeline: Pipeline, tmp_path: Path
) -> None:
    _write_notes(tmp_path / "notes", 3)
    # Over RAGBUS_CHUNK_MAX_DOCUMENT_CHARS (100000 in the test deployment): the chunker dead-letters it.
    (tmp_path / "notes" / "huge.txt").write_text("lantern " * 15_000)

    result = _ragbus(lite_pipeline, "publish", "notes", "--wait", "--timeout", "120", cwd=tmp_path)

    out = result.stdout
    assert "  read 4 files, 4 documents" in out, out
    sent = [line for line in out.splitlines() if line.startswith("  sent 4/4 events, ")]
    assert sent and sent[-1].endswith("kB"), out
    assert "published 4 documents" in out
    assert "  indexed 3/4, dead-lettered 1" in out, out
    assert "indexed 3/4, dead-lettered 1, pending 0 after" in out, out
    # It stops as soon as the rest is indexed: no waiting out the timeout for a document that will never come.
    assert result.returncode == 1, out + result.stderr
    assert "1 documents were dead-lettered: `ragbus dlq list` shows why" in result.stderr
    assert "notes/huge.txt: chunker rejected it" in result.stderr, result.stderr
    assert "RAGBUS_CHUNK_MAX_DOCUMENT_CHARS" in result.stderr, result.stderr


def _run_in_terminal(pipeline: Pipeline, args: list[str], cwd: Path, timeout_s: float = 300) -> tuple[int, str]:
    """Run `ragbus` with its stdout and stderr on a pseudo-terminal; returns the exit code and what it drew."""
    master, slave = pty.openpty()
    env = {**_env(pipeline, cwd), "TERM": "xterm-256color", "COLUMNS": "140"}
    process = subprocess.Popen(
        [sys.executable, "-m", "ragbus", *args], cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the terminal closed: the process is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


def test_publish_wait_draws_bars_on_a_terminal(lite_pipeline: Pipeline, tmp_path: Path) -> None:
    _write_notes(tmp_path / "notes", 5)
    code, drawn = _run_in_terminal(lite_pipeline, ["publish", "notes", "--wait", "--timeout", "120"], tmp_path)
    assert code == 0, drawn
    assert "━" in drawn, drawn  # a rich bar, not plain lines
    assert "\x1b[" in drawn  # redrawn in place with terminal control sequences
    for label in ("read", "sent", "indexed"):
        assert label in drawn, drawn
    assert "5/5" in drawn
    assert "published 5 documents" in drawn
    assert "all 5 documents searchable" in drawn
    assert "  sent 5/5 events" not in drawn  # the plain line form is for captured output only


def test_wait_names_the_setting_when_milvus_is_unreachable(lite_pipeline: Pipeline, tmp_path: Path) -> None:
    _write_notes(tmp_path / "notes", 1)
    env = {**lite_pipeline.env, "RAGBUS_MILVUS_URI": "http://127.0.0.1:1", "RAGBUS_MILVUS_TIMEOUT_S": "2"}
    dead_milvus = Pipeline(env=env, home=lite_pipeline.home)
    result = _ragbus(dead_milvus, "publish", "notes", "--wait", "--timeout", "10", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "published 1 documents" in result.stdout  # Kafka took them; only following them failed
    assert "Milvus at http://127.0.0.1:1" in result.stderr, result.stderr
    assert "check RAGBUS_MILVUS_URI" in result.stderr
    assert "Traceback" not in result.stderr
