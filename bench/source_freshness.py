"""Freshness through the change sources: seconds from a committed PostgreSQL UPDATE, and from a file save in a
watched folder, to the query API returning the new text.

    python -m bench.source_freshness [--rounds N]

Starts its own stack (bench.stack), a throwaway PostgreSQL server (wal_level=logical, spare port), the three
workers, the API, `ragbus source postgres` and `ragbus watch` as processes; then, one probe at a time on an
otherwise idle system, changes a row or a file to a unique sentence and polls POST /v1/query (retrieve only;
the Postgres probes filtered on a probe id column, like bench.freshness) until a citation carries it. The timer
starts after the COMMIT returned, or after the file was written and closed. Writes bench/results/sources.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import httpx

from bench.api_process import start_api
from bench.freshness import POLL_S, PROBE_KEY, _returned, _summary, probe_text
from bench.stack import ROOT, bench_stack, save_result, start_workers
from producers.sources.files import doc_id_for
from ragbus.document_follower import follow_documents
from ragbus.milvus.store import MilvusChunkStore
from ragbus.stack.process import ManagedProcess, stop_all
from tests.postgres_server import execute, postgres_server

ROWS = 20


def _source(name: str, argv: list[str], env: dict[str, str], home: Path, ready: str) -> ManagedProcess:
    log = home / f"{name}.log"
    process = ManagedProcess(name, [sys.executable, "-m", "ragbus", *argv], log, env).start()
    process.wait_ready(lambda: ready in log.read_text(), timeout_s=120)
    return process


async def _timed(
    change: Callable[[], object], returned: Callable[[], Awaitable[bool | str]], timeout_s: float
) -> float | None:
    change()
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if await returned() is True:
            return time.perf_counter() - started
        await asyncio.sleep(POLL_S)
    return None


async def measure(api_url: str, dsn: str, folder: Path, rounds: int, timeout_s: float = 60) -> dict[str, object]:
    """`rounds` Postgres probes, then `rounds` file probes, each after one warm-up; p50/p95 seconds of each."""
    rng = random.Random(11)
    results: dict[str, object] = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        for kind in ("postgres_update", "file_save"):
            seconds: list[float] = []
            misses: list[dict[str, object]] = []
            warmup: float | None = None
            # Round 0 is a warm-up, not counted: the first change meets a query path that has not answered yet.
            for round_no in range(rounds + 1):
                text, probe_id, row = probe_text(rng, round_no), uuid.uuid4().hex, rng.randrange(1, ROWS + 1)
                if kind == "postgres_update":
                    sql = f"UPDATE probes SET body = %s, {PROBE_KEY} = %s WHERE id = %s"
                    change = partial(execute, dsn, (sql, (text, probe_id, row)))
                    returned = partial(_returned, client, str(row), text, probe_id)
                else:
                    path = folder / f"note-{row}.md"
                    change = partial(path.write_text, f"# Note {row}\n{text}\n")
                    # Files carry no probe id to filter on: top_k covers every document of the bench (2 x ROWS),
                    # so a probe is missed only when its text is not searchable, never by ranking.
                    returned = partial(_returned, client, doc_id_for(path), text, None, 2 * ROWS)
                took = await _timed(change, returned, timeout_s)
                if round_no == 0:
                    warmup = took
                elif took is None:
                    misses.append({"round": round_no, "row": row})
                else:
                    seconds.append(took)
            results[kind] = _summary(seconds, misses, timeout_s) | {
                "warmup_s": None if warmup is None else round(warmup, 3),
                "seconds": [round(s, 3) for s in seconds],
            }
    return results


def main() -> None:
    """Run the measurement and save it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sources.json")
    args = parser.parse_args()
    with bench_stack() as (env, settings, home), postgres_server() as dsn:
        execute(
            dsn,
            f"CREATE TABLE probes (id int PRIMARY KEY, title text, body text, {PROBE_KEY} text)",
            "INSERT INTO probes SELECT i, 'Row ' || i, 'Initial text of row ' || i, ''"
            f" FROM generate_series(1, {ROWS}) i",
        )
        folder = home / "watched"
        folder.mkdir()
        for row in range(1, ROWS + 1):
            (folder / f"note-{row}.md").write_text(f"# Note {row}\nInitial note {row}.\n")
        processes = start_workers(env, home)
        try:
            api, url = start_api(env, home)
            processes.append(api)
            processes.append(_source("source-postgres", ["source", "postgres", "--dsn", dsn, "--table", "probes",
                                     "--id", "id", "--title", "title", "--text", "body", "--metadata", PROBE_KEY],
                                     env, home, "streaming changes"))  # fmt: skip
            processes.append(_source("source-watch", ["watch", str(folder), "--manifest", str(home / "manifest.json")],
                                     env, home, "watch: watching"))  # fmt: skip
            files = [doc_id_for(folder / f"note-{row}.md") for row in range(1, ROWS + 1)]
            expected: dict[tuple[str, str], int | None] = {
                ("default", d): 0 for d in [*map(str, range(1, ROWS + 1)), *files]
            }
            store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
            try:  # the snapshot and the first scan are indexed before the first probe
                assert not asyncio.run(follow_documents(settings, store, expected, timeout_s=300)).pending, (
                    "initial documents not indexed"
                )
            finally:
                store.close()
            result = asyncio.run(measure(url, dsn, folder, args.rounds))
        finally:
            stop_all(processes, timeout_s=20)
    save_result({"sources": result, "rounds": args.rounds}, args.out, "sources")


if __name__ == "__main__":
    main()
