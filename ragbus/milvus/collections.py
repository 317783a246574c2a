"""The chunk collections behind the alias: creating them, the alias, and their administration for reindexing.

`ensure_collection` and `ensure_alias` create a chunk collection with its document states and the alias if missing;
`MilvusCollectionAdmin` lists the collections, switches the alias, counts live documents and drops collections.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import partial

from ragbus.errors import RagbusError
from ragbus.milvus.bm25 import SPARSE_FIELD, supports_bm25
from ragbus.milvus.connection import MilvusConnection
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.schema import check_dim, chunk_schema, ensure_loaded

log = logging.getLogger(__name__)


def ensure_collection(connection: MilvusConnection, collection: str, dim: int, *, metadata_fields: bool = True) -> None:
    """Create the chunk collection and its document-state collection if missing, loaded. Idempotent.

    With RAGBUS_MILVUS_BM25=auto and a server that does BM25, a new collection also gets the BM25 sparse field
    (hybrid retrieval), its text analyzed without the stop words of RAGBUS_MILVUS_BM25_STOP_WORDS; an existing
    collection keeps the schema and analyzer it was created with (a reindex moves to new ones). A new collection
    copies metadata keys into md_<key> dynamic fields for fast filters; `metadata_fields=False` creates the
    layout of collections made before 27 Nov 2026 (tests of that layout use it).
    """
    client, settings = connection.client, connection.settings
    bm25 = False
    if not connection.call(lambda: client.has_collection(collection)):
        if settings.bm25 == "off":
            why = "RAGBUS_MILVUS_BM25=off"
        else:
            bm25 = connection.call(lambda: supports_bm25(client, settings.bm25_stop_words))
            why = f"Milvus at {connection.uri} " + ("does BM25" if bm25 else "refused BM25 (it needs Milvus 2.5+)")
        mode = "hybrid (BM25 + dense)" if bm25 else "dense-only"
        log.log(logging.INFO if bm25 else logging.WARNING, "creating collection %s %s: %s", collection, mode, why)
    ensure_loaded(
        connection,
        collection,
        lambda: chunk_schema(connection, dim, bm25=bm25, metadata_fields=metadata_fields),
        "embedding",
        "COSINE",
        sparse_index=SPARSE_FIELD if bm25 else None,
    )
    check_dim(connection, collection, dim)
    MilvusDocumentStates(connection).ensure(collection)


def ensure_alias(connection: MilvusConnection, collection: str, dim: int) -> str:
    """Make sure the alias exists (pointing at `collection` if new); return what it points at."""
    target = connection.alias_target()
    if target is not None:
        ensure_collection(connection, target, dim)
        return target
    ensure_collection(connection, collection, dim)
    try:
        connection.call(lambda: connection.client.create_alias(collection, connection.alias))
    except RagbusError:
        if connection.alias_target() is None:
            raise
    log.info("alias %s -> %s", connection.alias, collection)
    return connection.alias_target() or collection


class MilvusCollectionAdmin:
    """Blocking operations on the collections behind the alias."""

    def __init__(self, store: MilvusConnection) -> None:
        self.store = store
        self.client = store.client

    def versions(self, also: Iterable[str] = ()) -> list[int]:
        """Version numbers N of the `<alias>_v<N>` chunk collections that exist (or are named in `also`)."""
        pattern = re.compile(rf"^{re.escape(self.store.alias)}_v(\d+)$")
        names = [*self.store.call(self.client.list_collections), *also]
        return sorted(int(m.group(1)) for name in names if (m := pattern.match(name)))

    def exists(self, collection: str) -> bool:
        """Whether the chunk collection exists."""
        return bool(self.store.call(partial(self.client.has_collection, collection)))

    def switch_alias(self, collection: str) -> None:
        """Point the alias at `collection` in one atomic step (queries never see no collection)."""
        if self.store.alias_target() is None:
            self.store.call(partial(self.client.create_alias, collection, self.store.alias))
        else:
            self.store.call(partial(self.client.alter_alias, collection, self.store.alias))
        log.info("alias %s -> %s", self.store.alias, collection)

    def live_documents(self, collection: str) -> int:
        """Documents indexed and not deleted in `collection` (from its document states)."""
        rows = self.store.call(
            partial(
                self.client.query,
                MilvusDocumentStates.collection_for(collection),
                filter="deleted == false",
                output_fields=["count(*)"],
                consistency_level="Strong",
            )
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def chunk_count(self, collection: str) -> int:
        """Chunks stored in `collection`."""
        rows = self.store.call(
            partial(
                self.client.query,
                collection,
                filter='chunk_id != ""',
                output_fields=["count(*)"],
                consistency_level="Strong",
            )
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def drop(self, collection: str) -> None:
        """Drop a chunk collection and its document states (never the one the alias points at)."""
        if self.store.alias_target() == collection:
            raise ValueError(f"{collection} is served by alias {self.store.alias}; switch the alias first")
        for name in (collection, MilvusDocumentStates.collection_for(collection)):
            if self.store.call(partial(self.client.has_collection, name)):
                self.store.call(partial(self.client.drop_collection, name))
        log.info("dropped collection %s", collection)
