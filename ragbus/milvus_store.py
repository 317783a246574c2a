"""MilvusChunkStore: the chunk collection behind an alias — create, upsert, remove stale chunks, search."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from pymilvus import CollectionSchema, DataType, MilvusClient, MilvusException

from ragbus.errors import PermanentError, RagbusError, TransientError
from ragbus.settings import MilvusSettings
from schemas.embeddings import EmbeddedChunk, EmbeddedDocument, unpack_vector

log = logging.getLogger(__name__)
# pymilvus logs every failed RPC with a traceback, including the expected ones (an alias not created yet);
# this module turns each failure into a RagbusError that is logged where it is handled.
logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
T = TypeVar("T")

TEXT_MAX = 65_535
# pymilvus pings every 10 s even when idle; servers with gRPC's default ping policy (milvus-lite) answer that with
# GOAWAY "too many pings" and the next call fails. Ping only during calls, and keep each client's connection its own.
_GRPC_OPTIONS = {
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_permit_without_calls": 0,
    "grpc.use_local_subchannel_pool": 1,
}
# Milvus error texts that mean the request's data is wrong (retrying cannot help).
_RELEASED = re.compile(r"[Cc]ollection '([^']+)'")
_DATA_ERRORS = ("exceeds max length", "length exceeds", "dimension mismatch", "dim mismatch", "cannot parse expression")
_OUTPUT_FIELDS = ["chunk_id", "doc_id", "version", "tenant", "title", "text", "chunk_index", "source"]


def milvus_str(value: str) -> str:
    """A Milvus expression string literal: quotes and backslashes escaped, so values never become syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class ChunkHit:
    """One search result."""

    chunk_id: str
    doc_id: str
    version: int
    tenant: str
    title: str
    text: str
    chunk_index: int
    source: str
    score: float


class MilvusChunkStore:
    """All Milvus access of ragbus. Blocking calls: run them in a worker thread from async code."""

    def __init__(self, settings: MilvusSettings, uri: str) -> None:
        self.settings = settings
        self.uri = uri
        self.alias = settings.alias
        token = settings.token.get_secret_value() if settings.token else ""
        self.client: MilvusClient = self.call(
            lambda: MilvusClient(uri=uri, token=token, timeout=settings.timeout_s, grpc_options=_GRPC_OPTIONS)
        )

    def close(self) -> None:
        """Close the connection."""
        self.client.close()

    def call(self, fn: Callable[[], T]) -> T:
        """Run one Milvus call, mapping failures to TransientError (retry) or PermanentError (dead-letter).

        Only errors caused by the data itself are permanent. Anything else (server down, restarting, a
        collection released by a restart) is transient: the worker retries rather than lose the message.
        """
        try:
            return fn()
        except MilvusException as exc:
            text = str(exc).lower()
            if any(marker in text for marker in _DATA_ERRORS):
                raise PermanentError(f"Milvus rejected the data: {exc}", code="milvus_rejected") from exc
            if "released" in text or "not loaded" in text:
                self._reload(_RELEASED.search(str(exc)))
            raise TransientError(f"Milvus at {self.uri} failed: {exc}") from exc
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise TransientError(f"Milvus at {self.uri} unreachable: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("grpc"):
                raise TransientError(f"Milvus at {self.uri} unreachable: {exc}") from exc
            raise

    def _reload(self, named: re.Match[str] | None) -> None:
        # A restarted server keeps collections released until someone loads them.
        with contextlib.suppress(Exception):
            target = named.group(1) if named else self.alias_target()
            if target:
                self.client.load_collection(target)

    # --- collections and aliases -------------------------------------------------------------------------

    def ensure_collection(self, collection: str, dim: int) -> None:
        """Create the chunk collection and its document-state collection if missing, loaded. Idempotent."""
        self.ensure_loaded(collection, lambda: self._chunk_schema(dim), "embedding", "COSINE")
        self._check_dim(collection, dim)
        from ragbus.document_states import MilvusDocumentStates

        MilvusDocumentStates(self).ensure(collection)

    def _chunk_schema(self, dim: int) -> CollectionSchema:
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("tenant", DataType.VARCHAR, max_length=64)
        schema.add_field("version", DataType.INT64)
        schema.add_field("chunk_index", DataType.INT64)
        schema.add_field("title", DataType.VARCHAR, max_length=4096)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("produced_at_ms", DataType.INT64)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
        return schema

    def ensure_loaded(
        self, collection: str, schema: Callable[[], CollectionSchema], vector_field: str, metric: str
    ) -> None:
        """Create `collection` with `schema` and an AUTOINDEX on `vector_field` unless it exists; load it."""
        if self.call(lambda: self.client.has_collection(collection)):
            # A restarted server keeps collections released; searching one needs it loaded (idempotent).
            self.call(lambda: self.client.load_collection(collection))
            return
        index = self.client.prepare_index_params()
        index.add_index(field_name=vector_field, index_type="AUTOINDEX", metric_type=metric)
        try:
            self.call(
                lambda: self.client.create_collection(
                    collection,
                    schema=schema(),
                    index_params=index,
                    consistency_level=self.settings.consistency_level,
                )
            )
        except RagbusError:
            # Another process created it between our check and our create.
            if not self.call(lambda: self.client.has_collection(collection)):
                raise
        log.info("created Milvus collection %s", collection)

    def _check_dim(self, collection: str, dim: int) -> None:
        info = self.call(lambda: self.client.describe_collection(collection))
        for field in info["fields"]:
            if field["name"] == "embedding" and int(field["params"]["dim"]) != dim:
                raise PermanentError(
                    f"collection {collection} holds {field['params']['dim']}-dim vectors but the model makes "
                    f"{dim}: reindex into a new collection (ragbus reindex)",
                    code="dimension_mismatch",
                )

    def alias_target(self) -> str | None:
        """Collection the alias points at, or None when the alias does not exist yet."""
        try:
            info = self.client.describe_alias(self.alias)
        except MilvusException as exc:
            text = str(exc).lower()
            if "not exist" in text or "not found" in text:
                return None
            raise TransientError(f"Milvus at {self.uri} failed: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("grpc") or isinstance(exc, OSError):
                raise TransientError(f"Milvus at {self.uri} unreachable: {exc}") from exc
            raise
        return str(info["collection_name"])

    def ensure_alias(self, collection: str, dim: int) -> str:
        """Make sure the alias exists (pointing at `collection` if new); return what it points at."""
        target = self.alias_target()
        if target is not None:
            self.ensure_collection(target, dim)
            return target
        self.ensure_collection(collection, dim)
        try:
            self.call(lambda: self.client.create_alias(collection, self.alias))
        except RagbusError:
            if self.alias_target() is None:
                raise
        log.info("alias %s -> %s", self.alias, collection)
        return self.alias_target() or collection

    # --- writes ---------------------------------------------------------------------------------------------

    def replace_documents(self, docs: list[EmbeddedDocument], collection: str | None = None) -> int:
        """Upsert every chunk of these versions, then remove their chunks of other versions. Idempotent."""
        target = collection or self.alias
        rows = [_row(doc, chunk) for doc in docs for chunk in doc.chunks]
        for start in range(0, len(rows), 512):
            batch = rows[start : start + 512]
            self.call(partial(self.client.upsert, target, batch))
        for start in range(0, len(docs), 64):
            stale = " or ".join(
                f"({self._doc_filter(doc.tenant, doc.doc_id)} and version != {int(doc.version)})"
                for doc in docs[start : start + 64]
            )
            self.call(partial(self.client.delete, target, filter=stale))
        return len(rows)

    def delete_documents(self, keys: list[tuple[str, str]], collection: str | None = None) -> None:
        """Remove every chunk of each (tenant, doc_id). Idempotent."""
        for start in range(0, len(keys), 64):
            expr = " or ".join(f"({self._doc_filter(t, d)})" for t, d in keys[start : start + 64])
            self.call(partial(self.client.delete, collection or self.alias, filter=expr))

    @staticmethod
    def _doc_filter(tenant: str, doc_id: str) -> str:
        return f"tenant == {milvus_str(tenant)} and doc_id == {milvus_str(doc_id)}"

    # --- reads ----------------------------------------------------------------------------------------------

    def indexed_versions(self, tenant: str, doc_ids: Iterable[str]) -> dict[str, set[int]]:
        """Versions currently indexed for each of `doc_ids` (a doc absent from the result is not indexed)."""
        ids = list(doc_ids)
        if not ids:
            return {}
        expr = f"tenant == {milvus_str(tenant)} and doc_id in [{', '.join(milvus_str(d) for d in ids)}]"
        rows = self.call(lambda: self.client.query(self.alias, filter=expr, output_fields=["doc_id", "version"]))
        found: dict[str, set[int]] = {}
        for row in rows:
            found.setdefault(row["doc_id"], set()).add(int(row["version"]))
        return found

    def count_chunks(self, tenant: str | None = None) -> int:
        """Chunks in the aliased collection (optionally of one tenant)."""
        expr = f"tenant == {milvus_str(tenant)}" if tenant else 'chunk_id != ""'
        rows = self.call(lambda: self.client.query(self.alias, filter=expr, output_fields=["count(*)"]))
        return int(rows[0]["count(*)"]) if rows else 0

    def search(self, vector: list[float], top_k: int, tenant: str) -> list[ChunkHit]:
        """The `top_k` chunks of `tenant` closest to `vector`; [] when nothing is indexed yet."""
        if self.alias_target() is None:
            return []
        result = self.call(
            lambda: self.client.search(
                self.alias,
                data=[vector],
                limit=top_k,
                filter=f"tenant == {milvus_str(tenant)}",
                output_fields=_OUTPUT_FIELDS,
                search_params={"metric_type": "COSINE"},
                consistency_level=self.settings.consistency_level,
            )
        )
        return [_to_hit(hit) for hit in result[0]] if result else []


def _row(doc: EmbeddedDocument, chunk: EmbeddedChunk) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": doc.doc_id,
        "tenant": doc.tenant,
        "version": doc.version,
        "chunk_index": chunk.index,
        "title": doc.title[:1000],
        "text": chunk.text,
        "source": (doc.source or "")[:1000],
        "metadata": doc.metadata,
        "produced_at_ms": int(doc.produced_at.timestamp() * 1000),
        "embedding": unpack_vector(chunk.vector),
    }


def _to_hit(hit: dict[str, Any]) -> ChunkHit:
    entity = hit["entity"]
    return ChunkHit(
        chunk_id=entity["chunk_id"],
        doc_id=entity["doc_id"],
        version=int(entity["version"]),
        tenant=entity["tenant"],
        title=entity["title"],
        text=entity["text"],
        chunk_index=int(entity["chunk_index"]),
        source=entity.get("source") or "",
        score=float(hit["distance"]),
    )
