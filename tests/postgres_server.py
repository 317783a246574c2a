"""A throwaway PostgreSQL server for the source tests: the machine's binaries, a temp dir, a spare port.

Never the machine's shared server on 5432. initdb refuses to run as root, so as root it runs as `postgres`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from ragbus.stack.process import free_port


def _bindir() -> Path:
    return Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_server(wal_level: str = "logical") -> Iterator[str]:
    """A running server; yields its DSN (superuser `postgres`, database `postgres`)."""
    home = Path(tempfile.mkdtemp(prefix="ragbus-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    data, port, bindir = home / "data", free_port(), _bindir()
    subprocess.run(
        _as_server_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -c wal_level={wal_level} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = str(bindir / "pg_ctl")
    subprocess.run(
        _as_server_user([pg_ctl, "start", "-w", "-D", str(data), "-l", str(home / "log"), "-o", options]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "stop", "-D", str(data), "-m", "immediate", "-w"]), check=False)
        shutil.rmtree(home, ignore_errors=True)


def execute(dsn: str, *statements: str | tuple[str, tuple[object, ...]]) -> None:
    """Run statements, each in its own transaction (a tuple is a statement with parameters)."""
    conn = psycopg2.connect(dsn)
    try:
        for statement in statements:
            with conn, conn.cursor() as cur:
                sql, params = statement if isinstance(statement, tuple) else (statement, ())
                cur.execute(sql, params)
    finally:
        conn.close()
