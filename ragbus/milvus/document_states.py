"""MilvusDocumentStates: the last applied version of every document, and whether it is deleted.

Kept in a small collection next to the chunks it describes (`<collection>_docs`), so it is as durable as the index
itself and a reindex into a new collection starts with its own. It is what lets the indexer ignore an event older
than what it already applied, and keeps a replayed old upsert from resurrecting a deleted document.

A state also records which chunk sets (a version and its chunk count) may be in the chunk collection, so the indexer
removes an earlier version's chunks by primary key instead of a filtered delete that scans the collection. State
collections created before this record have no `chunks` field; for those, `chunks` reads as None (unknown).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from pymilvus import CollectionSchema, DataType

from ragbus.milvus.connection import MilvusConnection
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.schema import ensure_loaded

# A key of a state's chunk sets that no version can be (versions are not negative): the state's version travels in
# parts (schemas.chunks.ChunkedVersion) and its last part is not applied yet, so it is not whole in the collection.
PARTS_PENDING = -1


@dataclass(frozen=True)
class DocumentState:
    """What the index holds for one document."""

    tenant: str
    doc_id: str
    version: int
    deleted: bool
    # Chunk count by version, of every version whose chunks may be in the chunk collection; None: not recorded.
    chunks: Mapping[int, int] | None = None

    @property
    def parts_pending(self) -> bool:
        """Whether `version` came in parts and is not whole yet (its earlier version's chunks are still there)."""
        return PARTS_PENDING in (self.chunks or {})


def state_key(tenant: str, doc_id: str) -> str:
    """Primary key of a document's state."""
    return hashlib.sha256(f"{tenant}\x00{doc_id}".encode()).hexdigest()


class MilvusDocumentStates:
    """Read and write document states (blocking, like the connection it uses)."""

    def __init__(self, store: MilvusConnection) -> None:
        self.store = store
        self._tracks_chunks: dict[str, bool] = {}

    @staticmethod
    def collection_for(chunks_collection: str) -> str:
        """Name of the state collection beside a chunk collection."""
        return f"{chunks_collection}_docs"

    def _schema(self, record_chunks: bool) -> CollectionSchema:
        schema = self.store.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("tenant", DataType.VARCHAR, max_length=64)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("version", DataType.INT64)
        schema.add_field("deleted", DataType.BOOL)
        if record_chunks:
            schema.add_field("chunks", DataType.JSON)  # {"<version>": chunk count}
        # Milvus requires a vector field in every collection; this one is a constant marker, never searched.
        schema.add_field("marker", DataType.FLOAT_VECTOR, dim=2)
        return schema

    def ensure(self, chunks_collection: str, *, record_chunks: bool = True) -> None:
        """Create the state collection of `chunks_collection` if missing (idempotent).

        `record_chunks=False` creates the layout of earlier ragbus versions, without chunk sets (tests and benchmarks
        of the fallback use it).
        """
        schema = partial(self._schema, record_chunks)
        ensure_loaded(self.store, self.collection_for(chunks_collection), schema, "marker", "L2")

    def tracks_chunks(self, chunks_collection: str) -> bool:
        """Whether the state collection records chunk sets (created by this version of ragbus or a later one)."""
        known = self._tracks_chunks.get(chunks_collection)
        if known is None:
            name = self.collection_for(chunks_collection)
            info = self.store.call(partial(self.store.client.describe_collection, name))
            known = any(f["name"] == "chunks" for f in info["fields"])
            self._tracks_chunks[chunks_collection] = known
        return known

    def get(self, chunks_collection: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], DocumentState]:
        """States of the given (tenant, doc_id) keys; a document never seen is absent."""
        found: dict[tuple[str, str], DocumentState] = {}
        tracked = self.tracks_chunks(chunks_collection)
        fields = ["tenant", "doc_id", "version", "deleted", *(["chunks"] if tracked else [])]
        for start in range(0, len(keys), 256):
            part = keys[start : start + 256]
            expr = f"key in [{', '.join(milvus_str(state_key(t, d)) for t, d in part)}]"
            rows = self.store.call(
                partial(
                    self.store.client.query,
                    self.collection_for(chunks_collection),
                    filter=expr,
                    output_fields=fields,
                    consistency_level="Strong",  # must see the previous batch's write, whatever the reads use
                )
            )
            for row in rows:
                chunks = {int(v): int(n) for v, n in row["chunks"].items()} if tracked else None
                state = DocumentState(row["tenant"], row["doc_id"], int(row["version"]), bool(row["deleted"]), chunks)
                found[(state.tenant, state.doc_id)] = state
        return found

    def count_live(self, chunks_collection: str, tenant: str) -> int:
        """Documents of `tenant` the collection holds (not deleted)."""
        expr = f"tenant == {milvus_str(tenant)} and deleted == false"
        rows = self.store.call(
            partial(
                self.store.client.query,
                self.collection_for(chunks_collection),
                filter=expr,
                output_fields=["count(*)"],
            )
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def put(self, chunks_collection: str, states: list[DocumentState]) -> None:
        """Record states (upsert: idempotent); their chunk sets too where the collection records them."""
        tracked = self.tracks_chunks(chunks_collection)
        rows = [_row(s, tracked) for s in states]
        for start in range(0, len(rows), 512):
            self.store.call(
                partial(self.store.client.upsert, self.collection_for(chunks_collection), rows[start : start + 512])
            )


def _row(state: DocumentState, tracked: bool) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": state_key(state.tenant, state.doc_id),
        "tenant": state.tenant,
        "doc_id": state.doc_id,
        "version": state.version,
        "deleted": state.deleted,
        "marker": [1.0, 0.0],
    }
    if tracked:
        row["chunks"] = {str(version): count for version, count in (state.chunks or {}).items()}
    return row
