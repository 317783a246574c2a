"""Debezium change records shaped like the PostgreSQL connector's documented examples (JSON converter): the
envelope {before, after, source, op, ts_ms}, with `schemas.enable=true` ({"schema": ..., "payload": ...}) or
without it, keys {"id": N}, and the tombstone (null value) that follows a delete."""

from __future__ import annotations

import orjson

ROW_SCHEMA = {
    "type": "struct",
    "optional": True,
    "name": "dbserver1.public.articles.Value",
    "fields": [
        {"type": "int32", "optional": False, "field": "id"},
        {"type": "string", "optional": True, "field": "title"},
        {"type": "string", "optional": True, "field": "body"},
    ],
}
ENVELOPE_SCHEMA = {
    "type": "struct",
    "optional": False,
    "name": "dbserver1.public.articles.Envelope",
    "fields": [
        {**ROW_SCHEMA, "field": "before"},
        {**ROW_SCHEMA, "field": "after"},
        {"type": "struct", "optional": False, "name": "io.debezium.connector.postgresql.Source", "field": "source",
         "fields": [{"type": "int64", "optional": True, "field": "lsn"}, {"type": "int64", "field": "ts_ms"}]},
        {"type": "string", "optional": False, "field": "op"},
        {"type": "int64", "optional": True, "field": "ts_ms"},
    ],
}  # fmt: skip


def source_block(lsn: int, ts_ms: int, snapshot: str = "false") -> dict[str, object]:
    """The `source` metadata of the PostgreSQL connector."""
    return {
        "version": "2.5.0.Final",
        "connector": "postgresql",
        "name": "dbserver1",
        "ts_ms": ts_ms,
        "snapshot": snapshot,
        "db": "inventory",
        "sequence": f'["{lsn - 8}","{lsn}"]',
        "schema": "public",
        "table": "articles",
        "txId": 555,
        "lsn": lsn,
        "xmin": None,
    }


def change(
    op: str, before: dict[str, object] | None, after: dict[str, object] | None, lsn: int, *, with_schema: bool
) -> bytes:
    """One change record value."""
    ts_ms = 1_700_000_000_000 + lsn
    payload = {
        "before": before,
        "after": after,
        "source": source_block(lsn, ts_ms, "true" if op == "r" else "false"),
        "op": op,
        "ts_ms": ts_ms + 5,
    }
    return orjson.dumps({"schema": ENVELOPE_SCHEMA, "payload": payload} if with_schema else payload)


def key(doc_id: int, *, with_schema: bool) -> bytes:
    """One record key."""
    payload = {"id": doc_id}
    schema = {"type": "struct", "name": "dbserver1.public.articles.Key",
              "fields": [{"type": "int32", "optional": False, "field": "id"}]}  # fmt: skip
    return orjson.dumps({"schema": schema, "payload": payload} if with_schema else payload)
