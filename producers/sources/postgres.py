"""Follow a PostgreSQL table by logical replication (pgoutput) and publish its rows as document events.

First run: create the publication and the slot, exporting the slot's snapshot; publish every row read in that
snapshot (version = the slot's consistent point); mark the publication; then stream. Every later run streams from
the slot. Changes are grouped by transaction and published at its commit with version = the commit LSN, which
grows with commit order: a change seen twice, or one older than the snapshot, is ignored downstream. The slot is
acknowledged (flush LSN) only after the broker confirmed the transaction's events, so a SIGKILL loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import closing

from psycopg2.extensions import connection as Connection
from psycopg2.extras import LogicalReplicationConnection, ReplicationCursor

from producers.sources import pgoutput
from producers.sources.postgres_rows import row_bytes, row_event
from producers.sources.postgres_setup import (
    PostgresTableSpec,
    check_source,
    connect,
    drop_source,
    ensure_publication,
    mark_snapshot_done,
    slot_exists,
)
from producers.sources.runtime import SourceRun, running_source
from ragbus.errors import InvalidMessage
from ragbus.settings import Settings
from schemas.documents import DocumentEvent
from schemas.topics import Lane

log = logging.getLogger(__name__)
SNAPSHOT_BATCH = 500


class PostgresSource:
    """One followed table."""

    def __init__(self, spec: PostgresTableSpec, run: SourceRun, types: dict[str, int]) -> None:
        self.spec, self.run, self.types = spec, run, types
        self.relations: dict[int, tuple[str, ...]] = {}

    async def follow(self) -> None:
        """Snapshot if needed, then stream until SIGTERM."""
        with closing(connect(self.spec.dsn)) as conn:
            snapshot_done = ensure_publication(conn, self.spec) and slot_exists(conn, self.spec)
            repl = connect(self.spec.dsn, connection_factory=LogicalReplicationConnection)
            with closing(repl):
                cursor = repl.cursor()
                if not snapshot_done and not await self._snapshot(conn, cursor):
                    return  # stopped mid-snapshot: the next start takes a new one
                await self._stream(conn, repl, cursor)

    async def _snapshot(self, conn: Connection, cursor: ReplicationCursor) -> bool:
        """Publish every row of a fresh slot's snapshot; False when a stop was requested first."""
        spec = self.spec
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (spec.slot,))
            if cur.fetchone():  # a slot whose snapshot never finished: its exported snapshot is gone
                cur.execute("SELECT pg_drop_replication_slot(%s)", (spec.slot,))
        cursor.execute(f"CREATE_REPLICATION_SLOT {spec.slot} LOGICAL pgoutput EXPORT_SNAPSHOT")
        _slot, consistent_point, snapshot_name, _plugin = cursor.fetchone()
        version = _parse_lsn(consistent_point)
        log.info("postgres: slot %s created at %s; publishing the snapshot", spec.slot, consistent_point)
        # The exported snapshot lives while the replication connection runs no other command: read it all now.
        conn.autocommit = False
        published = 0
        try:
            with conn.cursor() as setup:
                setup.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                setup.execute("SET TRANSACTION SNAPSHOT %s", (snapshot_name,))
                setup.execute("SELECT %s::regclass::text", (spec.table,))
                (quoted,) = setup.fetchone()
            with conn.cursor(name="ragbus_snapshot") as rows:
                columns = ", ".join(f'"{c}"::text' for c in spec.columns)
                rows.execute(f"SELECT {columns} FROM {quoted}")  # noqa: S608 (names checked against pg_attribute)
                while (batch := rows.fetchmany(SNAPSHOT_BATCH)) and not self.run.stopping.is_set():
                    events = await self._events([dict(zip(spec.columns, r, strict=True)) for r in batch], version)
                    await self.run.publish(events, lane=Lane.BULK)  # a snapshot never delays live changes
                    published += len(events)
            conn.commit()
        finally:
            conn.autocommit = True
        if self.run.stopping.is_set():
            log.info("postgres: stopped during the snapshot (%d rows published); the next start redoes it", published)
            return False
        mark_snapshot_done(conn, spec)
        self.run.saw_change()
        log.info("postgres: snapshot of %s published (%d rows)", spec.table, published)
        return True

    async def _events(
        self, rows: list[dict[str, object]], version: int, *, deleted: bool = False
    ) -> list[DocumentEvent]:
        events = []
        for row in rows:
            try:
                events.append(row_event(self.spec, row, self.types, version, deleted=deleted))
            except InvalidMessage as exc:
                await self.run.dead_letter(
                    None, row_bytes(row), exc, origin=f"postgres:{self.spec.table}", partition=0, offset=version
                )
        return events

    async def _stream(self, conn: Connection, repl: Connection, cursor: ReplicationCursor) -> None:
        options = {"proto_version": "1", "publication_names": self.spec.slot}
        cursor.start_replication(slot_name=self.spec.slot, decode=False, options=options, status_interval=5)
        log.info("postgres: streaming changes of %s from slot %s", self.spec.table, self.spec.slot)
        pending: dict[str, DocumentEvent] = {}
        begin: pgoutput.Begin | None = None
        while not self.run.stopping.is_set():
            message = cursor.read_message()
            if message is None:
                await _readable(repl.fileno(), 1.0)
                continue
            decoded = pgoutput.decode(message.payload)
            if isinstance(decoded, pgoutput.Begin):
                begin, pending = decoded, {}
            elif isinstance(decoded, pgoutput.Relation):
                self.relations[decoded.relation_id] = tuple(name for name, _ in decoded.columns)
            elif isinstance(decoded, pgoutput.RowChange) and begin is not None:
                for event in await self._change(conn, decoded, begin.final_lsn):
                    pending.pop(event.doc_id, None)  # the transaction's last change of a row wins, in order
                    pending[event.doc_id] = event
            elif isinstance(decoded, pgoutput.Truncate):
                log.error(
                    "postgres: TRUNCATE of %s is not propagated; run with --drop-slot and restart", self.spec.table
                )
            elif isinstance(decoded, pgoutput.Commit):
                changed_at = (decoded.commit_time_us + pgoutput.POSTGRES_EPOCH_US) / 1e6
                self.run.saw_change(changed_at)
                await self.run.publish(list(pending.values()), changed_at)
                cursor.send_feedback(flush_lsn=decoded.end_lsn)  # only now: the broker has every event
                begin, pending = None, {}

    async def _change(self, conn: Connection, change: pgoutput.RowChange, version: int) -> list[DocumentEvent]:
        names = self.relations[change.relation_id]
        new = dict(zip(names, change.new, strict=True)) if change.new is not None else None
        old = dict(zip(names, change.old, strict=True)) if change.old is not None else None
        events: list[DocumentEvent] = []
        if old is not None and (new is None or old.get(self.spec.id_column) != new.get(self.spec.id_column)):
            events += await self._events([old], version, deleted=True)  # a delete, or an update of the id
        if new is not None:
            if any(v is pgoutput.UNCHANGED_TOAST for c, v in new.items() if c in self.spec.columns):
                new = _current_row(conn, self.spec, new[self.spec.id_column])
            if new is not None:
                events += await self._events([new], version)
        return events


def _current_row(conn: Connection, spec: PostgresTableSpec, doc_id: object) -> dict[str, object] | None:
    # An UPDATE that left a large (TOASTed) column untouched does not resend it: read the row as it is now. A
    # newer value read here is harmless: its own change follows with a larger version.
    with conn.cursor() as cur:
        cur.execute("SELECT %s::regclass::text", (spec.table,))
        (quoted,) = cur.fetchone() or (spec.table,)
        columns = ", ".join(f'"{c}"::text' for c in spec.columns)
        cur.execute(f'SELECT {columns} FROM {quoted} WHERE "{spec.id_column}"::text = %s', (doc_id,))  # noqa: S608
        row = cur.fetchone()
    return dict(zip(spec.columns, row, strict=True)) if row else None


async def _readable(fd: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await asyncio.wait_for(ready, seconds)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)


def _parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


async def follow_table(settings: Settings, spec: PostgresTableSpec) -> None:
    """Run the Postgres source until SIGTERM (the entry point of `ragbus source postgres`)."""
    with closing(connect(spec.dsn)) as conn:  # a misconfigured database fails before anything starts
        types = check_source(conn, spec)
    async with running_source("postgres", settings, f"table {spec.table} (slot {spec.slot})") as run:
        await PostgresSource(spec, run, types).follow()


def drop_table_source(spec: PostgresTableSpec) -> list[str]:
    """Remove the slot and publication of `spec` (`--drop-slot`); returns what was removed."""
    with closing(connect(spec.dsn)) as conn:
        return drop_source(conn, spec)
