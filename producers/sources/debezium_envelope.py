"""Debezium change records (JSON converter, with or without the schema envelope) as document events.

Ops: c (create), u (update) and r (snapshot read) are upserts of `after`; d is a delete (the id from `before`,
else from the record key). A tombstone (null value) follows each delete only so that log compaction can drop
the key: the delete already happened, so it publishes nothing. Versions come from the source position: the
PostgreSQL connector's `source.lsn`, else the source commit time `source.ts_ms` (microseconds, the clock of
ragbus's own versions), so a change seen twice or out of order is ignored downstream.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from ragbus.errors import InvalidMessage
from schemas.bounds import MetadataValue
from schemas.documents import DocumentEvent, DocumentOp


@dataclass(frozen=True)
class DebeziumMapping:
    """Which fields of a row make the document."""

    id_field: str
    text_field: str
    title_field: str | None = None
    metadata_fields: tuple[str, ...] = ()
    tenant: str = "default"


def _payload(raw: bytes, what: str) -> object:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage(f"{what} is not JSON ({exc})", code="invalid_envelope") from None
    if isinstance(data, dict) and "schema" in data and "payload" in data:  # schemas.enable=true
        return data["payload"]
    return data


def _metadata(value: object) -> MetadataValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return orjson.dumps(value).decode()


def _version(payload: dict[str, object]) -> int:
    source = payload.get("source")
    if isinstance(source, dict):
        if isinstance(source.get("lsn"), int):
            return int(source["lsn"])
        if isinstance(source.get("ts_ms"), int):
            return int(source["ts_ms"]) * 1000
    if isinstance(envelope_ts := payload.get("ts_ms"), int):
        return envelope_ts * 1000
    raise InvalidMessage("envelope has neither source.lsn nor source.ts_ms: no version", code="invalid_envelope")


def change_time(payload: dict[str, object]) -> float | None:
    """When the change happened at the source (Unix seconds), if the envelope says."""
    source = payload.get("source")
    ts = source.get("ts_ms") if isinstance(source, dict) else None
    return ts / 1000 if isinstance(ts, int) else None


def envelope_of(value: bytes) -> dict[str, object]:
    """The change envelope of a record value; InvalidMessage (dead-lettered) when it is not one."""
    payload = _payload(value, "record value")
    if not isinstance(payload, dict) or payload.get("op") not in {"c", "u", "d", "r"}:
        op = payload.get("op") if isinstance(payload, dict) else None
        raise InvalidMessage(
            f"not a Debezium change envelope (op {op!r}; expected c, u, d or r)", code="invalid_envelope"
        )
    return payload


def document_event(mapping: DebeziumMapping, key: bytes | None, payload: dict[str, object]) -> DocumentEvent:
    """The document event of a change envelope."""
    op, version = payload["op"], _version(payload)
    row = payload.get("before" if op == "d" else "after")
    if op == "d" and not isinstance(row, dict) and key is not None:
        row = _payload(key, "record key")  # REPLICA IDENTITY without the old row: the key holds the id
    if not isinstance(row, dict):
        raise InvalidMessage(f"op {op!r} without a row ({'before' if op == 'd' else 'after'} is missing)",
                             code="invalid_envelope")  # fmt: skip
    if row.get(mapping.id_field) is None:
        raise InvalidMessage(
            f"row has no field {mapping.id_field!r} (--id); fields: {', '.join(row)}", code="missing_id"
        )
    doc_id = str(row[mapping.id_field])
    text = "" if op == "d" else row.get(mapping.text_field)
    if text is not None and not isinstance(text, str):
        raise InvalidMessage(f"field {mapping.text_field!r} (--text) is not text", code="invalid_envelope")
    try:
        if not (text or "").strip():  # deleted, or nothing left to search
            return DocumentEvent(op=DocumentOp.DELETE, doc_id=doc_id, version=version, tenant=mapping.tenant,
                                 source="debezium")  # fmt: skip
        title = row.get(mapping.title_field) if mapping.title_field else None
        return DocumentEvent(
            doc_id=doc_id,
            version=version,
            tenant=mapping.tenant,
            title=str(title or "")[:1000],
            text=str(text),
            metadata={f: _metadata(row.get(f)) for f in mapping.metadata_fields},
            source="debezium",
        )
    except ValidationError as exc:
        raise InvalidMessage(f"row {doc_id!r} is not a valid document: {exc}", code="invalid_row") from None
