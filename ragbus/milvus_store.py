"""MilvusChunkStore: the chunk collection behind an alias — create, upsert, remove stale chunks, search."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
from pymilvus import AnnSearchRequest, CollectionSchema, DataType, MilvusClient, MilvusException, RRFRanker
from pymilvus.exceptions import (
    DataNotMatchException,
    DataTypeNotMatchException,
    DataTypeNotSupportException,
    FieldTypeException,
    ParamError,
    PrimaryKeyException,
)

from ragbus.errors import ConfigError, PermanentError, RagbusError, TransientError
from ragbus.milvus_bm25 import SPARSE_FIELD, add_bm25, supports_bm25, text_field_options
from ragbus.milvus_bm25 import has_bm25 as described_with_bm25
from ragbus.milvus_filters import MetadataWhere, md_fields_of, milvus_str
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
_MISSING_COLLECTION = re.compile(r"collection not found|can ?not find collection|can't find collection|not exist", re.I)
_DATA_ERRORS = (
    "exceeds max length",
    "exceeds max_length",
    "length exceeds",
    "exceeds the max length",
    "dimension mismatch",
    "dim mismatch",
    "cannot parse expression",
    "out of range",
    "type mismatch",
    "invalid parameter",
    "invalid input",
    "data type",
    "json field",
    "exceeds max size",
)
# pymilvus refuses rows against the collection's schema before sending them (an int64 field given 2**63, a string
# where a number belongs): the data is wrong, whatever the server's state.
_CLIENT_DATA_ERRORS = (
    DataNotMatchException,
    DataTypeNotMatchException,
    DataTypeNotSupportException,
    ParamError,
    PrimaryKeyException,
    FieldTypeException,
)
_OUTPUT_FIELDS = ["chunk_id", "doc_id", "version", "tenant", "title", "text", "chunk_index", "source"]


def milvus_tls_options(settings: MilvusSettings) -> dict[str, Any]:
    """pymilvus TLS options from RAGBUS_MILVUS_SECURE / SERVER_PEM_PATH / SERVER_NAME (an https URI implies TLS)."""
    options: dict[str, Any] = {"secure": True} if settings.secure else {}
    if settings.server_pem_path is not None:
        options["server_pem_path"] = str(settings.server_pem_path)
    if settings.server_name:
        options["server_name"] = settings.server_name
    return options


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
        self._described: dict[str, dict[str, Any]] = {}
        token = settings.token.get_secret_value() if settings.token else ""
        self.client: MilvusClient = self.call(
            lambda: MilvusClient(
                uri=uri,
                token=token,
                timeout=settings.timeout_s,
                grpc_options=_GRPC_OPTIONS,
                # pymilvus 3 shares one connection per address|token, whatever the TLS options: a store with
                # another CA or no TLS would silently ride an earlier store's channel. Each store owns its own.
                dedicated=True,
                **milvus_tls_options(settings),
            )
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
        except Exception as exc:
            if refused := self._security_refusal(exc):
                raise refused from None  # the chain can carry the URI's user-info; the message names the fix
            mapped = self._mapped(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    def _mapped(self, exc: Exception) -> Exception:
        if isinstance(exc, (*_CLIENT_DATA_ERRORS, ValueError, TypeError, OverflowError)):
            return PermanentError(f"Milvus refused the data: {exc}", code="milvus_rejected")
        if isinstance(exc, MilvusException):
            text = str(exc).lower()
            if any(marker in text for marker in _DATA_ERRORS):
                return PermanentError(f"Milvus rejected the data: {exc}", code="milvus_rejected")
            if "released" in text or "not loaded" in text:
                self._reload(_RELEASED.search(str(exc)))
            return TransientError(f"Milvus at {self.uri} failed: {exc}")
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or type(exc).__module__.startswith("grpc"):
            return TransientError(f"Milvus at {self.uri} unreachable: {exc}")
        return exc

    def _security_refusal(self, exc: BaseException) -> ConfigError | None:
        """A refused login or an untrusted server certificate: a ConfigError naming the settings, never the secret."""
        seen: list[BaseException] = []
        cause: BaseException | None = exc
        while cause is not None and len(seen) < 8 and all(cause is not s for s in seen):
            seen.append(cause)
            status = getattr(cause, "code", None)
            grpc_error = type(cause).__module__.startswith("grpc") and callable(status)
            name = getattr(status(), "name", "") if grpc_error and status is not None else ""
            details = str(cause)
            if name in {"UNAUTHENTICATED", "PERMISSION_DENIED"}:
                return ConfigError(
                    f"Milvus at {self.uri} refused the credentials ({name.lower()}); check RAGBUS_MILVUS_TOKEN or "
                    "RAGBUS_MILVUS_TOKEN_FILE (user:password or an API token) and that user's privileges"
                )
            if "CERTIFICATE_VERIFY_FAILED" in details or "Tls handshake failed" in details:
                return ConfigError(
                    f"TLS handshake with Milvus at {self.uri} failed (CERTIFICATE_VERIFY_FAILED); check "
                    "RAGBUS_MILVUS_SERVER_PEM_PATH (the CA or certificate to trust) and RAGBUS_MILVUS_SERVER_NAME"
                )
            cause = cause.__cause__ or cause.__context__
        return None

    def _reload(self, named: re.Match[str] | None) -> None:
        # A restarted server keeps collections released until someone loads them.
        with contextlib.suppress(Exception):
            target = named.group(1) if named else self.alias_target()
            if target:
                self.load(target)

    def load(self, collection: str) -> None:
        """Load `collection` with RAGBUS_MILVUS_REPLICA_NUMBER in-memory replicas, or one where the server can't."""
        replicas = self.settings.replica_number
        if replicas > 1:
            try:
                self.client.load_collection(collection, replica_number=replicas)
                return
            except MilvusException as exc:
                # A standalone server (one query node) refuses more replicas than nodes: serve with one.
                log.warning("RAGBUS_MILVUS_REPLICA_NUMBER=%d not applied to %s: %s", replicas, collection, exc)
        self.client.load_collection(collection)

    # --- collections and aliases -------------------------------------------------------------------------

    def ensure_collection(self, collection: str, dim: int, *, metadata_fields: bool = True) -> None:
        """Create the chunk collection and its document-state collection if missing, loaded. Idempotent.

        With RAGBUS_MILVUS_BM25=auto and a server that does BM25, a new collection also gets the BM25 sparse field
        (hybrid retrieval), its text analyzed without the stop words of RAGBUS_MILVUS_BM25_STOP_WORDS; an existing
        collection keeps the schema and analyzer it was created with (a reindex moves to new ones). A new collection
        copies metadata keys into md_<key> dynamic fields for fast filters; `metadata_fields=False` creates the
        layout of collections made before 27 Nov 2026 (tests of that layout use it).
        """
        bm25 = False
        if not self.call(lambda: self.client.has_collection(collection)):
            bm25 = self.settings.bm25 == "auto" and self.call(
                lambda: supports_bm25(self.client, self.settings.bm25_stop_words)
            )
        self.ensure_loaded(
            collection,
            lambda: self._chunk_schema(dim, bm25=bm25, metadata_fields=metadata_fields),
            "embedding",
            "COSINE",
            sparse_index=SPARSE_FIELD if bm25 else None,
        )
        self._check_dim(collection, dim)
        from ragbus.document_states import MilvusDocumentStates

        MilvusDocumentStates(self).ensure(collection)

    def _chunk_schema(self, dim: int, *, bm25: bool = False, metadata_fields: bool = True) -> CollectionSchema:
        # Dynamic fields hold the metadata keys filters match on (md_<key>; ragbus.milvus_filters).
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=metadata_fields)
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("tenant", DataType.VARCHAR, max_length=64)
        schema.add_field("version", DataType.INT64)
        schema.add_field("chunk_index", DataType.INT64)
        schema.add_field("title", DataType.VARCHAR, max_length=4096)
        analyzed = text_field_options(self.settings.bm25_stop_words) if bm25 else {}
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX, **analyzed)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("produced_at_ms", DataType.INT64)
        schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
        if bm25:
            add_bm25(schema)
        return schema

    def ensure_loaded(
        self,
        collection: str,
        schema: Callable[[], CollectionSchema],
        vector_field: str,
        metric: str,
        sparse_index: str | None = None,
    ) -> None:
        """Create `collection` with `schema` and an AUTOINDEX on `vector_field` unless it exists; load it.

        `sparse_index` names a BM25 sparse field to index as well.
        """
        if self.call(lambda: self.client.has_collection(collection)):
            # A restarted server keeps collections released; searching one needs it loaded (idempotent).
            self.call(lambda: self.load(collection))
            return
        index = self.client.prepare_index_params()
        index.add_index(field_name=vector_field, index_type="AUTOINDEX", metric_type=metric)
        if sparse_index:
            index.add_index(field_name=sparse_index, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
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
        if self.settings.replica_number > 1:
            self.call(lambda: self.load(collection))  # created loaded with one replica
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

    def serves(self, collection: str) -> bool:
        """Whether the server answers and has `collection` loaded (a cheap probe; TransientError if unreachable).

        A collection still loading after a restart fails writes without the data being at fault."""
        state = self.call(lambda: self.client.get_load_state(collection))
        return getattr(state.get("state"), "name", "") == "Loaded"

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

    def upsert_chunks(self, docs: list[EmbeddedDocument], collection: str | None = None) -> int:
        """Upsert every chunk of these document versions (idempotent: chunk ids are deterministic); rows written."""
        target = collection or self.alias
        dynamic = bool(docs) and self.has_metadata_fields(target)
        rows = [_row(doc, chunk, dynamic) for doc in docs for chunk in doc.chunks]
        for start in range(0, len(rows), 512):
            batch = rows[start : start + 512]
            self.call(partial(self.client.upsert, target, batch))
        return len(rows)

    def delete_chunks(self, chunk_ids: list[str], collection: str | None = None) -> None:
        """Remove chunks by primary key (a lookup, not a scan). Idempotent: an absent id is no error."""
        target = collection or self.alias
        for start in range(0, len(chunk_ids), 512):
            self.call(partial(self.client.delete, target, ids=chunk_ids[start : start + 512]))

    def delete_other_versions(self, docs: list[EmbeddedDocument], collection: str | None = None) -> None:
        """Remove the chunks of every version but these, by a filtered delete that scans the collection.

        Only for collections whose document states do not record their chunk sets (created before they did).
        """
        for start in range(0, len(docs), 64):
            stale = " or ".join(
                f"({self._doc_filter(doc.tenant, doc.doc_id)} and version != {int(doc.version)})"
                for doc in docs[start : start + 64]
            )
            self.call(partial(self.client.delete, collection or self.alias, filter=stale))

    def delete_documents(self, keys: list[tuple[str, str]], collection: str | None = None) -> None:
        """Remove every chunk of each (tenant, doc_id) by a filtered delete (scans the collection). Idempotent."""
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
    ) -> list[ChunkHit]:
        """The `top_k` chunks of `tenant` closest to `vector`; [] when nothing is indexed yet.

        `where` narrows the search to metadata matches, rendered for the searched collection's layout; it is
        ANDed after the tenant clause, so it can never widen the search to another tenant. `collection` names the
        collection to search (the API passes the alias target it resolved, so its cache key and its data always
        agree, even while a server's proxies still resolve the alias to the previous collection); by default, the
        alias.
        With `text` and a collection that has the BM25 field, the search is hybrid: BM25 on `text` and dense on
        `vector`, fused by reciprocal rank fusion (`rrf_k`); each hit's score is still its cosine to `vector`.
        """
        if collection:
            try:
                expr = self._filter(collection, tenant, where)
                return self._search(collection, vector, top_k, expr, text, rrf_k, where=where)
            except TransientError as exc:
                if not _MISSING_COLLECTION.search(str(exc)):
                    raise
                log.warning("collection %s is gone (pruned?): searching through alias %s", collection, self.alias)
        if self.alias_target() is None:
            return []
        return self._search(
            self.alias, vector, top_k, self._filter(self.alias, tenant, where), text, rrf_k, where=where
        )

    def _filter(self, target: str, tenant: str, where: MetadataWhere | None) -> str:
        own = f"tenant == {milvus_str(tenant)}"
        return f"{own} and {where.expression(self.has_metadata_fields(target))}" if where else own

    def _description(self, collection: str) -> dict[str, Any]:
        # A collection's schema never changes, so it is asked once per name; the alias can move to another one.
        known = self._described.get(collection)
        if known is None:
            known = self.call(lambda: self.client.describe_collection(collection))
            if collection != self.alias:
                self._described[collection] = known
        return known

    def has_bm25(self, collection: str) -> bool:
        """Whether `collection` (or the alias) has the BM25 field."""
        return described_with_bm25(self._description(collection))

    def has_metadata_fields(self, collection: str) -> bool:
        """Whether `collection` copies metadata keys into `md_<key>` dynamic fields (ragbus.milvus_filters)."""
        return bool(self._description(collection).get("enable_dynamic_field"))

    def _search(  # noqa: PLR0917 - the one place a search is assembled
        self,
        target: str,
        vector: list[float],
        top_k: int,
        expr: str,
        text: str | None,
        rrf_k: int,
        *,
        where: MetadataWhere | None = None,
    ) -> list[ChunkHit]:
        if text and text.strip() and self.has_bm25(target):
            return self._hybrid_search(target, vector, top_k, expr, text, rrf_k, where=where)
        result = self.call(
            lambda: self.client.search(
                target,
                data=[vector],
                limit=top_k,
                filter=expr,
                output_fields=_fields(_OUTPUT_FIELDS, where),
                search_params={"metric_type": "COSINE"},
                consistency_level=self.settings.consistency_level,
            )
        )
        return [_to_hit(hit) for hit in _typed(result[0] if result else [], where)]

    def _hybrid_search(  # noqa: PLR0917
        self,
        target: str,
        vector: list[float],
        top_k: int,
        expr: str,
        text: str,
        rrf_k: int,
        *,
        where: MetadataWhere | None = None,
    ) -> list[ChunkHit]:
        requests = [
            AnnSearchRequest(
                data=[vector], anns_field="embedding", param={"metric_type": "COSINE"}, limit=top_k, expr=expr
            ),
            AnnSearchRequest(
                data=[text], anns_field=SPARSE_FIELD, param={"metric_type": "BM25"}, limit=top_k, expr=expr
            ),
        ]
        result = self.call(
            lambda: self.client.hybrid_search(
                target,
                requests,
                RRFRanker(rrf_k),
                limit=top_k,
                output_fields=_fields([*_OUTPUT_FIELDS, "embedding"], where),
                consistency_level=self.settings.consistency_level,
            )
        )
        hits = _typed(result[0] if result else [], where)
        # Fused order; the score stays the cosine to the query (what citations and the extractive cut expect).
        return [
            dataclasses.replace(_to_hit(hit), score=float(np.dot(vector, hit["entity"]["embedding"]))) for hit in hits
        ]


def _fields(fields: list[str], where: MetadataWhere | None) -> list[str]:
    return [*fields, "metadata"] if where else fields


def _typed(hits: Iterable[dict[str, Any]], where: MetadataWhere | None) -> list[dict[str, Any]]:
    # Milvus (lite) compares JSON values loosely (`== true` also matches 1): the hits are checked again with strict
    # types, so a boolean filter never returns a number and a number filter never a boolean.
    return [hit for hit in hits if where is None or where.matches(hit["entity"].get("metadata") or {})]


def _row(doc: EmbeddedDocument, chunk: EmbeddedChunk, dynamic: bool) -> dict[str, Any]:
    row = {
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
    if dynamic:
        row |= md_fields_of(doc.metadata)
    return row


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
