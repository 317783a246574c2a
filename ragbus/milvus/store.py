"""MilvusChunkStore: the chunk collection behind an alias — create, upsert, remove stale chunks, search."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ragbus.milvus import collections, schema, search, writes
from ragbus.milvus.connection import MilvusConnection
from ragbus.milvus.filters import MetadataWhere
from ragbus.milvus.rows import ChunkHit
from schemas.embeddings import EmbeddedDocument


class MilvusChunkStore(MilvusConnection):
    """All Milvus access of ragbus: a connection (client, call, alias) and the jobs of the modules beside it.

    Blocking calls: run them in a worker thread from async code.
    """

    # --- sealing ---------------------------------------------------------------------------------------------

    def request_flush(self, collection: str) -> Any:
        """Seal `collection`'s segments and return at once with a future whose `result()` waits until the server
        persisted them. MilvusClient.flush does both in one call; on Milvus 2.3 here the wait took 2.5 s per
        collection (polled every 0.5 s), on milvus-lite 0.05 s. pymilvus sends the Flush request, and checks its
        answer, before returning the future (its `_async` flush); MilvusClient exposes no such call, hence its
        handler."""
        timeout = self.settings.timeout_s
        return self.call(lambda: self.client._get_connection().flush([collection], timeout=timeout, _async=True))

    # --- collections and aliases -------------------------------------------------------------------------

    def ensure_collection(self, collection: str, dim: int, *, metadata_fields: bool = True) -> None:
        """Create the chunk collection and its document-state collection if missing, loaded (collections)."""
        collections.ensure_collection(self, collection, dim, metadata_fields=metadata_fields)

    def ensure_alias(self, collection: str, dim: int) -> str:
        """Make sure the alias exists (pointing at `collection` if new); return what it points at."""
        return collections.ensure_alias(self, collection, dim)

    def has_bm25(self, collection: str) -> bool:
        """Whether `collection` (or the alias) has the BM25 field."""
        return schema.has_bm25(self, collection)

    def has_metadata_fields(self, collection: str) -> bool:
        """Whether `collection` copies metadata keys into `md_<key>` dynamic fields (ragbus.milvus.filters)."""
        return schema.has_metadata_fields(self, collection)

    # --- writes ---------------------------------------------------------------------------------------------

    def upsert_chunks(self, docs: list[EmbeddedDocument], collection: str | None = None) -> int:
        """Upsert every chunk of these document versions (idempotent: chunk ids are deterministic); rows written."""
        return writes.upsert_chunks(self, docs, collection)

    def delete_chunks(self, chunk_ids: list[str], collection: str | None = None) -> None:
        """Remove chunks by primary key (a lookup, not a scan). Idempotent: an absent id is no error."""
        writes.delete_chunks(self, chunk_ids, collection)

    def delete_other_versions(self, docs: list[EmbeddedDocument], collection: str | None = None) -> None:
        """Remove the chunks of every version but these, by a filtered delete that scans the collection."""
        writes.delete_other_versions(self, docs, collection)

    def delete_documents(self, keys: list[tuple[str, str]], collection: str | None = None) -> None:
        """Remove every chunk of each (tenant, doc_id) by a filtered delete (scans the collection). Idempotent."""
        writes.delete_documents(self, keys, collection)

    def count_version_chunks(self, collection: str, tenant: str, doc_id: str, version: int) -> int:
        """Chunks of one document version in `collection`, read Strong (the indexer's count of a version in parts)."""
        return writes.count_version_chunks(self, collection, tenant, doc_id, version)

    # --- reads ----------------------------------------------------------------------------------------------

    def indexed_versions(self, tenant: str, doc_ids: Iterable[str]) -> dict[str, set[int]]:
        """Versions currently indexed for each of `doc_ids` (a doc absent from the result is not indexed)."""
        return search.indexed_versions(self, tenant, doc_ids)

    def count_document_chunks(self, tenant: str, doc_id: str, version: int) -> int:
        """Searchable chunks of one version of a document."""
        return search.count_document_chunks(self, tenant, doc_id, version)

    def count_chunks(self, tenant: str | None = None) -> int:
        """Chunks in the aliased collection (optionally of one tenant)."""
        return search.count_chunks(self, tenant)

    def search(
        self,
        vector: list[float],
        top_k: int,
        tenant: str,
        where: MetadataWhere | None = None,
        *,
        collection: str | None = None,
        text: str | None = None,
        rrf_k: int = 60,
        written: int | None = None,
    ) -> list[ChunkHit]:
        """The `top_k` chunks of `tenant` closest to `vector`; [] when nothing is indexed yet.

        `where` narrows the search to metadata matches, rendered for the searched collection's layout; it is
        ANDed after the tenant clause, so it can never widen the search to another tenant. `collection` names the
        collection to search (the API passes the alias target it resolved, so its cache key and its data always
        agree, even while a server's proxies still resolve the alias to the previous collection); by default, the
        alias.
        With `text` and a collection that has the BM25 field, the search is hybrid: BM25 on `text` and dense on
        `vector`, fused by reciprocal rank fusion (`rrf_k`); each hit's score is still its cosine to `vector`.
        `written`: the engine timestamp of the last write to `collection` (ragbus.write_marks) to read at, instead
        of RAGBUS_MILVUS_CONSISTENCY_LEVEL.
        """
        return search.search(
            self, vector, top_k, tenant, where, collection=collection, text=text, rrf_k=rrf_k, written=written
        )

    def search_many(
        self,
        vectors: list[list[float]],
        top_k: int,
        tenant: str,
        where: MetadataWhere | None = None,
        *,
        collection: str | None = None,
        texts: list[str] | None = None,
        rrf_k: int = 60,
        written: int | None = None,
    ) -> list[list[ChunkHit]]:
        """`search` for several questions of one shape in one call (one text per vector for hybrid, or None)."""
        return search.search_many(
            self, vectors, top_k, tenant, where, collection=collection, texts=texts, rrf_k=rrf_k, written=written
        )
