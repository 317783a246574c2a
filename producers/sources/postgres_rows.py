"""Rows of a followed table as document events: id, title and text columns, metadata typed by column type."""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from producers.sources.postgres_setup import PostgresTableSpec
from ragbus.errors import InvalidMessage
from schemas.bounds import MetadataValue
from schemas.documents import DocumentEvent, DocumentOp

_INTEGER = {20, 21, 23}  # int8, int2, int4
_FLOAT = {700, 701, 1700}  # float4, float8, numeric
_BOOL = 16


def typed(text: object, type_oid: int) -> MetadataValue:
    """A column's text value as a metadata value of its type."""
    if text is None:
        return None
    value = str(text)
    if type_oid in _INTEGER:
        return int(value)
    if type_oid in _FLOAT:
        return float(value)
    if type_oid == _BOOL:
        return value == "t"
    return value


def row_event(
    spec: PostgresTableSpec, row: dict[str, object], types: dict[str, int], version: int, *, deleted: bool = False
) -> DocumentEvent:
    """The event a row's state stands for; a row without text is a delete (nothing to search).

    InvalidMessage (the row is dead-lettered, the stream goes on) when the row cannot be a document.
    """
    doc_id = row.get(spec.id_column)
    if doc_id is None:
        raise InvalidMessage(f"{spec.table}: a row without {spec.id_column}", code="missing_id")
    text = "" if deleted else str(row.get(spec.text_column) or "")
    source = f"postgres:{spec.table}"
    try:
        if not text.strip():
            return DocumentEvent(
                op=DocumentOp.DELETE, doc_id=str(doc_id), version=version, tenant=spec.tenant, source=source
            )
        return DocumentEvent(
            doc_id=str(doc_id),
            version=version,
            tenant=spec.tenant,
            title=str(row.get(spec.title_column) or "")[:1000] if spec.title_column else "",
            text=text,
            metadata={c: typed(row.get(c), types[c]) for c in spec.metadata_columns},
            source=source,
        )
    except (ValidationError, ValueError) as exc:
        raise InvalidMessage(
            f"{spec.table} row {doc_id!r} is not a valid document: {exc}", code="invalid_row"
        ) from None


def row_bytes(row: dict[str, object]) -> bytes:
    """A row as JSON, the payload of its dead letter."""
    return orjson.dumps({k: v if isinstance(v, str | None) else repr(v) for k, v in row.items()})
