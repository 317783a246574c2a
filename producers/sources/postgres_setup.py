"""What the Postgres source checks and creates on the database: a publication and a replication slot, both
named `ragbus_<table>` (or --name), and the comment on the publication that marks the first snapshot done."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg2
import psycopg2.errors
from psycopg2.extensions import connection as Connection

from ragbus.errors import ConfigError, TransientError

SNAPSHOT_DONE = "ragbus: snapshot published"


@dataclass(frozen=True)
class PostgresTableSpec:
    """Which table to follow and how its rows become documents."""

    dsn: str
    table: str
    id_column: str
    title_column: str | None
    text_column: str
    metadata_columns: tuple[str, ...] = ()
    tenant: str = "default"
    name: str | None = None

    @property
    def slot(self) -> str:
        """Name of the replication slot and of the publication."""
        return self.name or "ragbus_" + re.sub(r"[^a-z0-9_]", "_", self.table.lower())

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column a document is made of."""
        title = (self.title_column,) if self.title_column else ()
        return tuple(dict.fromkeys((self.id_column, *title, self.text_column, *self.metadata_columns)))


def connect(dsn: str, **extra: object) -> Connection:
    """A connection; an unreachable server is transient, a refused login a ConfigError."""
    try:
        conn = psycopg2.connect(dsn, **extra)
    except psycopg2.OperationalError as exc:
        message = str(exc).strip()
        if "authentication" in message or "role" in message or "does not exist" in message:
            raise ConfigError(
                f"PostgreSQL refused the connection (--dsn / RAGBUS_SOURCE_POSTGRES_DSN): {message}"
            ) from None
        raise TransientError(f"PostgreSQL unreachable: {message}") from None
    if "connection_factory" not in extra:  # a replication connection manages its own transactions
        conn.autocommit = True
    return conn


def check_source(conn: Connection, spec: PostgresTableSpec) -> dict[str, int]:
    """Fail with a clear ConfigError unless logical replication of the table can work; returns column type oids."""
    with conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        (wal_level,) = cur.fetchone() or ("?",)
        if wal_level != "logical":
            raise ConfigError(
                f"PostgreSQL wal_level is {wal_level!r}, logical replication needs 'logical': set wal_level = logical "
                "in postgresql.conf (ALTER SYSTEM SET wal_level = logical) and restart the server"
            )
        cur.execute("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
        if not (cur.fetchone() or (False,))[0]:
            raise ConfigError(
                "the PostgreSQL role has no REPLICATION attribute: ALTER ROLE <role> WITH REPLICATION "
                "(it also needs SELECT on the table and to own it, or an existing publication)"
            )
        cur.execute("SELECT to_regclass(%s)::oid", (spec.table,))
        (relid,) = cur.fetchone() or (None,)
        if relid is None:
            raise ConfigError(f"table {spec.table!r} does not exist (or is not visible on the search_path)")
        cur.execute("SELECT has_table_privilege(%s::regclass, 'SELECT')", (spec.table,))
        if not (cur.fetchone() or (False,))[0]:
            raise ConfigError(f"the PostgreSQL role may not SELECT from {spec.table}: GRANT SELECT ON {spec.table}")
        cur.execute(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
            (relid,),
        )
        types: dict[str, int] = dict(cur.fetchall())
        missing = [c for c in spec.columns if c not in types]
        if missing:
            raise ConfigError(f"table {spec.table} has no column {', '.join(missing)} (it has: {', '.join(types)})")
        _check_replica_identity(cur, spec, relid)
        _check_publication_rights(cur, spec, relid)
    return types


def _check_publication_rights(cur: psycopg2.extensions.cursor, spec: PostgresTableSpec, relid: int) -> None:
    # The source records its snapshot on the publication (a comment: only its owner may), which must publish the
    # table. Without it, the first run creates it: that needs CREATE on the database and owning the table.
    cur.execute(
        "SELECT pg_has_role(pubowner, 'USAGE'), puballtables OR EXISTS "
        "(SELECT 1 FROM pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = %s) "
        "FROM pg_publication p WHERE pubname = %s",
        (relid, spec.slot),
    )
    existing = cur.fetchone()
    if existing is not None:
        owns_it, publishes_table = existing
        if not publishes_table:
            raise ConfigError(
                f"publication {spec.slot} exists but does not publish {spec.table}: "
                f"ALTER PUBLICATION {spec.slot} ADD TABLE {spec.table} (or --drop-slot, then start again)"
            )
        if not owns_it:
            raise ConfigError(
                f"publication {spec.slot} belongs to another role, and the source records its snapshot on it: "
                f"ALTER PUBLICATION {spec.slot} OWNER TO the source's role (which needs CREATE on the database)"
            )
        return
    cur.execute(
        "SELECT current_database(), has_database_privilege(current_database(), 'CREATE'), "
        "pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = %s",
        (relid,),
    )
    database, may_create, owns = cur.fetchone() or ("?", False, False)
    missing = [f"CREATE on database {database}"] * (not may_create) + [f"ownership of {spec.table}"] * (not owns)
    if missing:
        raise ConfigError(
            f"cannot create publication {spec.slot}: the role lacks {' and '.join(missing)}; grant "
            f"{'it' if len(missing) == 1 else 'them'}, or let an owner run: "
            f"CREATE PUBLICATION {spec.slot} FOR TABLE {spec.table}"
        )


def _check_replica_identity(cur: psycopg2.extensions.cursor, spec: PostgresTableSpec, relid: int) -> None:
    # A delete carries only the replica identity's columns: the id column must be among them.
    cur.execute("SELECT relreplident FROM pg_class WHERE oid = %s", (relid,))
    (identity,) = cur.fetchone() or ("n",)
    if identity == "f":
        return
    cur.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s AND ((%s = 'd' AND i.indisprimary) OR (%s = 'i' AND i.indisreplident))",
        (relid, identity, identity),
    )
    if spec.id_column not in {name for (name,) in cur.fetchall()}:
        raise ConfigError(
            f"deletes of {spec.table} would not carry {spec.id_column}: make it the primary key or "
            f"ALTER TABLE {spec.table} REPLICA IDENTITY FULL"
        )


def ensure_publication(conn: Connection, spec: PostgresTableSpec) -> bool:
    """Create the publication if missing; True when the first snapshot was already published."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = %s", (spec.slot,)
        )
        row = cur.fetchone()
        if row is not None:
            return row[0] == SNAPSHOT_DONE
        cur.execute("SELECT %s::regclass::text", (spec.table,))
        (quoted,) = cur.fetchone() or (spec.table,)  # as PostgreSQL quotes it: never raw user text in SQL
        try:
            cur.execute(f"CREATE PUBLICATION {_ident(spec.slot)} FOR TABLE {quoted}")
        except psycopg2.errors.InsufficientPrivilege as exc:
            raise ConfigError(
                f"cannot create publication {spec.slot}: {str(exc).strip()} (the role needs CREATE on the database "
                f"and to own {spec.table}; or let an owner run: CREATE PUBLICATION {spec.slot} FOR TABLE {spec.table})"
            ) from None
    return False


def mark_snapshot_done(conn: Connection, spec: PostgresTableSpec) -> None:
    """Remember, on the database itself, that the snapshot was published: a restart streams instead."""
    with conn.cursor() as cur:
        cur.execute(f"COMMENT ON PUBLICATION {_ident(spec.slot)} IS %s", (SNAPSHOT_DONE,))


def slot_exists(conn: Connection, spec: PostgresTableSpec) -> bool:
    """Whether the replication slot exists."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (spec.slot,))
        return cur.fetchone() is not None


def drop_source(conn: Connection, spec: PostgresTableSpec) -> list[str]:
    """Remove the slot and the publication ragbus created; returns what was removed."""
    removed = []
    with conn.cursor() as cur:
        cur.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (spec.slot,))
        row = cur.fetchone()
        if row is not None:
            if row[0] is not None:
                raise ConfigError(f"replication slot {spec.slot} is in use by process {row[0]}: stop the source first")
            cur.execute("SELECT pg_drop_replication_slot(%s)", (spec.slot,))
            removed.append(f"replication slot {spec.slot}")
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (spec.slot,))
        if cur.fetchone() is not None:
            cur.execute(f"DROP PUBLICATION {_ident(spec.slot)}")
            removed.append(f"publication {spec.slot}")
    return removed


def _ident(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ConfigError(f"{name!r} is not a valid slot name (lowercase letters, digits and _, at most 63)")
    return name
