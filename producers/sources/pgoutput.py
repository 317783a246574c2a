"""Decode the messages of PostgreSQL's built-in `pgoutput` logical decoding plugin (protocol version 1).

Only what a change source needs: transaction boundaries, relation descriptions, and row changes with their
column values as text (https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

UNCHANGED_TOAST = object()  # a large value an UPDATE left untouched: pgoutput does not resend it


@dataclass(frozen=True)
class Begin:
    """A transaction starts; `final_lsn` is the LSN of its commit."""

    final_lsn: int
    commit_time_us: int


@dataclass(frozen=True)
class Commit:
    """A transaction ends; acknowledging `end_lsn` releases its WAL."""

    commit_lsn: int
    end_lsn: int
    commit_time_us: int


@dataclass(frozen=True)
class Relation:
    """Columns (name, type oid) of a table, sent before its first change in a session."""

    relation_id: int
    namespace: str
    name: str
    columns: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RowChange:
    """An insert, update or delete. `old` holds the replica identity (or the whole old row); `new` is None for
    a delete. Values are text, None for NULL, or UNCHANGED_TOAST."""

    kind: str  # "insert" | "update" | "delete"
    relation_id: int
    old: tuple[object, ...] | None
    new: tuple[object, ...] | None


@dataclass(frozen=True)
class Truncate:
    """Tables emptied by TRUNCATE."""

    relation_ids: tuple[int, ...]


Message = Begin | Commit | Relation | RowChange | Truncate | None

# pgoutput timestamps count microseconds from 2000-01-01 UTC.
POSTGRES_EPOCH_US = 946_684_800 * 1_000_000


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values

    def byte(self) -> str:
        self.at += 1
        return chr(self.data[self.at - 1])

    def string(self) -> str:
        end = self.data.index(b"\0", self.at)
        text = self.data[self.at : end].decode()
        self.at = end + 1
        return text

    def tuple_data(self) -> tuple[object, ...]:
        (count,) = self.take("!h")
        values: list[object] = []
        for _ in range(count):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED_TOAST)
            else:  # "t" (text) or "b" (binary, never requested here)
                (length,) = self.take("!i")
                values.append(self.data[self.at : self.at + length].decode())
                self.at += length
        return tuple(values)


def decode(payload: bytes) -> Message:  # noqa: PLR0911 - one branch per message kind
    """One pgoutput message; None for kinds a source ignores (origin, type, logical messages)."""
    read = _Reader(payload)
    kind = read.byte()
    if kind == "B":
        final_lsn, commit_time, _xid = read.take("!qqi")
        return Begin(final_lsn, commit_time)
    if kind == "C":
        _flags, commit_lsn, end_lsn, commit_time = read.take("!bqqq")
        return Commit(commit_lsn, end_lsn, commit_time)
    if kind == "R":
        (relation_id,) = read.take("!i")
        namespace, name = read.string(), read.string()
        _identity, (count,) = read.byte(), read.take("!h")
        columns = []
        for _ in range(count):
            read.take("!b")
            column = read.string()
            type_oid, _typmod = read.take("!ii")
            columns.append((column, type_oid))
        return Relation(relation_id, namespace, name, tuple(columns))
    if kind == "I":
        (relation_id,) = read.take("!i")
        read.byte()  # "N"
        return RowChange("insert", relation_id, None, read.tuple_data())
    if kind == "U":
        (relation_id,) = read.take("!i")
        marker, old = read.byte(), None
        if marker in "KO":
            old = read.tuple_data()
            marker = read.byte()
        return RowChange("update", relation_id, old, read.tuple_data())
    if kind == "D":
        (relation_id,) = read.take("!i")
        read.byte()  # "K" or "O"
        return RowChange("delete", relation_id, read.tuple_data(), None)
    if kind == "T":
        count, _options = read.take("!ib")
        return Truncate(read.take(f"!{count}i"))
    return None


def lsn_text(lsn: int) -> str:
    """An LSN as PostgreSQL writes it (`16/B374D848`)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
