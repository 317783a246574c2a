"""`ragbus source postgres` against its own PostgreSQL server: snapshot, changes, crash and restart, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping

import psycopg2
import pytest
from fastapi.testclient import TestClient

from producers.sources.postgres_setup import PostgresTableSpec, check_source
from ragbus.errors import ConfigError
from ragbus.stack.process import ManagedProcess
from tests.pipeline_helpers import ask, chunks_of, wait_indexed
from tests.postgres_server import execute, postgres_server
from tests.stack_fixtures import Pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.one_engine, pytest.mark.slow]
SOURCE_ARGS = ["--table", "articles", "--id", "id", "--title", "title", "--text", "body", "--metadata", "category"]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_server() as dsn:
        execute(
            dsn,
            "CREATE TABLE articles (id int PRIMARY KEY, title text, body text, category text)",
            "INSERT INTO articles SELECT i, 'Article ' || i, 'Routine maintenance note number ' || i || "
            "' about pumps and valves.', 'maintenance' FROM generate_series(1, 1000) i",
        )
        yield dsn


@pytest.fixture(scope="module")
def source(pipeline: Pipeline, database: str) -> Iterator[ManagedProcess]:
    process = start_source(pipeline, database)
    yield process
    process.stop()


def start_source(pipeline: Pipeline, dsn: str) -> ManagedProcess:
    prefix = pipeline.env["RAGBUS_KAFKA_TOPIC_PREFIX"]
    log = pipeline.home / f"{prefix}-source-postgres.log"
    streams = log.read_text().count("streaming changes") if log.exists() else 0
    process = ManagedProcess(
        "source-postgres",
        [sys.executable, "-m", "ragbus", "source", "postgres", "--dsn", dsn, *SOURCE_ARGS],
        log,
        env=pipeline.env,
    ).start()
    process.wait_ready(lambda: log.read_text().count("streaming changes") > streams, timeout_s=120)
    return process


def lsn_now(dsn: str) -> int:
    """A lower bound for the version of any change committed after this call."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        (lsn,) = cur.fetchone()
    conn.close()
    return int(lsn) + 1


def one_version_each(
    pipeline: Pipeline, rows: range, at_least: Mapping[int, int] | None = None, timeout_s: float = 60
) -> dict[int, int]:
    """Wait until each row's document has chunks of one version only (the indexer has removed the earlier ones), and
    that version is at least `at_least[row]` where given; returns that version per row.

    Waited for, bounded: while milvus-lite flushes a collection (the indexer's sealer does, a second after the
    pipeline drains), a read can show a row's previous value (bench/milvus_flush_reads.py). A wrong index stays
    wrong and fails here after `timeout_s`, naming the rows.
    """
    found: dict[int, int] = {}
    off: dict[int, set[int]] = {}

    def settled() -> bool:
        found.clear()
        off.clear()
        for i in rows:
            versions = {int(c["version"]) for c in chunks_of(pipeline, str(i))}  # type: ignore[call-overload]
            if len(versions) != 1 or (at_least is not None and min(versions) < at_least[i]):
                off[i] = versions
            else:
                found[i] = versions.pop()
        return not off

    try:
        wait_for(settled, timeout_s=timeout_s, message="one indexed version per row")
    except AssertionError as exc:
        shown = dict(list(off.items())[:5])
        wanted = {i: at_least[i] for i in shown} if at_least is not None else {}
        raise AssertionError(f"{exc}: rows off (versions found): {shown}, wanted at least {wanted}") from None
    return found


def test_snapshot_then_insert_update_delete_reach_queries(
    pipeline: Pipeline, api: TestClient, database: str, source: ManagedProcess
) -> None:
    wait_indexed(pipeline, {("default", str(i)): 0 for i in range(1, 1001)})

    before = lsn_now(database)
    execute(
        database,
        "INSERT INTO articles VALUES (5001, 'Aurora', 'The aurora borealis glows green over Tromso in winter.', 'sky')",
        "UPDATE articles SET body = 'Article 5 now explains how narwhals use their tusks to sense water.' WHERE id = 5",
        "DELETE FROM articles WHERE id = 7",
    )
    wait_indexed(pipeline, {("default", "5001"): before, ("default", "5"): before, ("default", "7"): None})

    # The earlier version's chunks are removed right after the new ones are written (bounded: see one_version_each).
    wait_for(lambda: chunks_of(pipeline, "7") == [], timeout_s=60, message="the deleted row's chunks removed")
    one_version_each(pipeline, range(5, 6), at_least={5: before})
    cited = [c["doc_id"] for c in ask(api, "Where does the aurora borealis glow green?")["citations"]]  # type: ignore[index,union-attr]
    assert cited[0] == "5001"
    cited = [c["doc_id"] for c in ask(api, "How do narwhals use their tusks?")["citations"]]  # type: ignore[index,union-attr]
    assert cited[0] == "5"


def test_a_transaction_updating_many_rows(pipeline: Pipeline, database: str, source: ManagedProcess) -> None:
    before = lsn_now(database)
    conn = psycopg2.connect(database)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE articles SET body = 'Bulk revision of note ' || id WHERE id BETWEEN 100 AND 399")
        cur.execute("UPDATE articles SET body = 'Second edit in the same transaction' WHERE id = 100")
    conn.close()
    wait_indexed(pipeline, {("default", str(i)): before for i in range(100, 400)})
    # Searchable means the new chunks are written; the indexer removes the snapshot's right after, and commits. One
    # CI run still read a snapshot chunk once the pipeline had drained: the removal is awaited, bounded.
    pipeline.wait_drained()
    rows = range(100, 400)
    versions = set(one_version_each(pipeline, rows, at_least=dict.fromkeys(rows, before)).values())
    assert len(versions) == 1, "one transaction, one version: its commit LSN"


def test_sigkill_mid_stream_then_restart_applies_every_change_at_its_latest_version(
    pipeline: Pipeline, database: str, source: ManagedProcess
) -> None:
    last_change: dict[int, int] = {}

    def edit() -> None:
        for round_ in range(3):
            for i in range(500, 600):
                last_change[i] = lsn_now(database)
                execute(database, (f"UPDATE articles SET body = 'Round {round_} of note {i}' WHERE id = %s", (i,)))
        for i in range(600, 620):
            last_change[i] = lsn_now(database)
            execute(database, ("DELETE FROM articles WHERE id = %s", (i,)))

    editor = threading.Thread(target=edit)
    editor.start()
    while len(last_change) < 60:
        threading.Event().wait(0.05)
    source.signal(signal.SIGKILL)
    source.wait_stopped(5)
    editor.join()
    restarted = start_source(pipeline, database)
    try:
        expected: dict[tuple[str, str], int | None] = {("default", str(i)): v for i, v in last_change.items()}
        expected.update({("default", str(i)): None for i in range(600, 620)})
        wait_indexed(pipeline, expected)
        pipeline.wait_drained()  # the earlier versions' chunks are removed once the indexer has committed
        one_version_each(pipeline, range(500, 600), at_least=last_change)  # each row's last change, only it
    finally:
        restarted.stop()


def test_drop_slot_removes_the_slot_and_the_publication(pipeline: Pipeline, database: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ragbus", "source", "postgres", "--dsn", database, *SOURCE_ARGS, "--drop-slot"],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "replication slot ragbus_articles" in result.stdout and "publication ragbus_articles" in result.stdout
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_replication_slots UNION ALL SELECT count(*) FROM pg_publication")
        assert [n for (n,) in cur.fetchall()] == [0, 0]
    conn.close()


def test_wal_level_replica_is_a_clear_error(pipeline: Pipeline) -> None:
    with postgres_server(wal_level="replica") as dsn:
        execute(dsn, "CREATE TABLE articles (id int PRIMARY KEY, title text, body text, category text)")
        result = subprocess.run(
            [sys.executable, "-m", "ragbus", "source", "postgres", "--dsn", dsn, *SOURCE_ARGS],
            env={**os.environ, **pipeline.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "wal_level is 'replica'" in result.stderr and "wal_level = logical" in result.stderr


def test_missing_table_column_and_identity_are_clear_errors(database: str) -> None:
    execute(database, "CREATE TABLE notes (ref text, body text)")
    spec = PostgresTableSpec(database, "articles", "id", "title", "body")
    conn = psycopg2.connect(database)
    try:
        with pytest.raises(ConfigError, match="does not exist"):
            check_source(conn, PostgresTableSpec(database, "no_such_table", "id", None, "body"))
        with pytest.raises(ConfigError, match="has no column bodytext"):
            check_source(conn, PostgresTableSpec(database, "articles", "id", None, "bodytext"))
        with pytest.raises(ConfigError, match="REPLICA IDENTITY FULL"):
            check_source(conn, PostgresTableSpec(database, "notes", "ref", None, "body"))
        assert "category" in check_source(conn, spec)
    finally:
        conn.close()


def test_missing_privileges_are_clear_errors(pipeline: Pipeline, database: str) -> None:
    """A role without REPLICATION, one that may not read the table, one that may read it but can create no
    publication, one whose publication another role owns (the source marks its snapshot on it), and a publication
    of another table: each stops the source before it starts, with what to do (exit 1), and leaves no slot."""
    execute(
        database,
        "CREATE ROLE reader LOGIN",
        "GRANT SELECT ON articles TO reader",
        "CREATE ROLE blind LOGIN REPLICATION",
        "CREATE ROLE tenant_app LOGIN REPLICATION",
        "GRANT SELECT ON articles TO tenant_app",
        "CREATE TABLE other_things (id int PRIMARY KEY)",
        "CREATE PUBLICATION s_postgres FOR TABLE articles",  # an owner's publication, for a source run as another
        "CREATE PUBLICATION s_elsewhere FOR TABLE other_things",
    )
    cases = [  # (role, slot and publication name, what the error says)
        ("reader", "s_reader", "has no REPLICATION attribute: ALTER ROLE <role> WITH REPLICATION"),
        ("blind", "s_blind", "may not SELECT from articles: GRANT SELECT ON articles"),
        (
            "tenant_app",
            "s_tenant_app",
            "cannot create publication s_tenant_app: the role lacks CREATE on database postgres and ownership of "
            "articles; grant them, or let an owner run: CREATE PUBLICATION s_tenant_app FOR TABLE articles",
        ),
        (
            "tenant_app",
            "s_postgres",
            "publication s_postgres belongs to another role, and the source records its snapshot on it: "
            "ALTER PUBLICATION s_postgres OWNER TO",
        ),
        ("postgres", "s_elsewhere", "publication s_elsewhere exists but does not publish articles"),
    ]
    for role, slot, message in cases:
        dsn = database.replace("user=postgres", f"user={role}")
        result = subprocess.run(
            [sys.executable, "-m", "ragbus", "source", "postgres", "--dsn", dsn, *SOURCE_ARGS, "--name", slot],
            env={**os.environ, **pipeline.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 1, (role, result.stderr[-2000:])
        assert message in result.stderr, (role, slot, result.stderr[-2000:])
        assert "Traceback" not in result.stderr and "source postgres running" not in result.stderr, role
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 's\\_%'")
        assert cur.fetchall() == [], "a refused start leaves nothing behind"
    conn.close()
