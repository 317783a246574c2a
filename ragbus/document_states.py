"""MilvusDocumentStates: the last applied version of every document, and whether it is deleted.

Kept in a small collection next to the chunks it describes (`<collection>_docs`), so it is as durable as the index
itself and a reindex into a new collection starts with its own. It is what lets the indexer ignore an event older
than what it already applied, and keeps a replayed old upsert from resurrecting a deleted document.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial

from pymilvus import CollectionSchema, DataType

from ragbus.milvus_store import MilvusChunkStore, milvus_str


@dataclass(frozen=True)
class DocumentState:
    """What the index holds for one document."""

    tenant: str
    doc_id: str
    version: int
    deleted: bool


def state_key(tenant: str, doc_id: str) -> str:
    """Primary key of a document's state."""
    return hashlib.sha256(f"{tenant}\x00{doc_id}".encode()).hexdigest()


class MilvusDocumentStates:
    """Read and write document states (blocking, like the store it uses)."""

    def __init__(self, store: MilvusChunkStore) -> None:
        self.store = store

    @staticmethod
    def collection_for(chunks_collection: str) -> str:
        """Name of the state collection beside a chunk collection."""
        return f"{chunks_collection}_docs"

    def _schema(self) -> CollectionSchema:
        schema = self.store.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("tenant", DataType.VARCHAR, max_length=64)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("version", DataType.INT64)
        schema.add_field("deleted", DataType.BOOL)
        # Milvus requires a vector field in every collection; this one is a constant marker, never searched.
        schema.add_field("marker", DataType.FLOAT_VECTOR, dim=2)
        return schema

    def ensure(self, chunks_collection: str) -> None:
        """Create the state collection of `chunks_collection` if missing (idempotent)."""
        self.store.ensure_loaded(self.collection_for(chunks_collection), self._schema, "marker", "L2")

    def get(self, chunks_collection: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], DocumentState]:
        """States of the given (tenant, doc_id) keys; a document never seen is absent."""
        found: dict[tuple[str, str], DocumentState] = {}
        for start in range(0, len(keys), 256):
            part = keys[start : start + 256]
            expr = f"key in [{', '.join(milvus_str(state_key(t, d)) for t, d in part)}]"
            rows = self.store.call(
                partial(
                    self.store.client.query,
                    self.collection_for(chunks_collection),
                    filter=expr,
                    output_fields=["tenant", "doc_id", "version", "deleted"],
                    consistency_level="Strong",  # must see the previous batch's write, whatever the reads use
                )
            )
            for row in rows:
                state = DocumentState(row["tenant"], row["doc_id"], int(row["version"]), bool(row["deleted"]))
                found[(state.tenant, state.doc_id)] = state
        return found

    def put(self, chunks_collection: str, states: list[DocumentState]) -> None:
        """Record states (upsert: idempotent)."""
        rows = [
            {
                "key": state_key(s.tenant, s.doc_id),
                "tenant": s.tenant,
                "doc_id": s.doc_id,
                "version": s.version,
                "deleted": s.deleted,
                "marker": [1.0, 0.0],
            }
            for s in states
        ]
        for start in range(0, len(rows), 512):
            self.store.call(
                partial(self.store.client.upsert, self.collection_for(chunks_collection), rows[start : start + 512])
            )
