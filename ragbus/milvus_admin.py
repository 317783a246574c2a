"""Collection administration for reindexing: list, switch the alias, count live documents, drop."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from functools import partial

from ragbus.document_states import MilvusDocumentStates
from ragbus.milvus_store import MilvusChunkStore

log = logging.getLogger(__name__)


class MilvusCollectionAdmin:
    """Blocking operations on the collections behind the alias."""

    def __init__(self, store: MilvusChunkStore) -> None:
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
