"""Collection layouts: the chunk schema, creating a collection if missing, and what a collection's layout holds."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pymilvus import CollectionSchema, DataType

from ragbus.errors import PermanentError, RagbusError
from ragbus.milvus.bm25 import add_bm25, text_field_options
from ragbus.milvus.bm25 import has_bm25 as described_with_bm25
from ragbus.milvus.connection import MilvusConnection

log = logging.getLogger(__name__)
TEXT_MAX = 65_535


def chunk_schema(
    connection: MilvusConnection, dim: int, *, bm25: bool = False, metadata_fields: bool = True
) -> CollectionSchema:
    """The chunk collection's fields; with `bm25`, the analyzed text and its BM25 sparse field."""
    # Dynamic fields hold the metadata keys filters match on (md_<key>; ragbus.milvus.filters).
    schema = connection.client.create_schema(auto_id=False, enable_dynamic_field=metadata_fields)
    schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=128)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
    schema.add_field("tenant", DataType.VARCHAR, max_length=64)
    schema.add_field("version", DataType.INT64)
    schema.add_field("chunk_index", DataType.INT64)
    schema.add_field("title", DataType.VARCHAR, max_length=4096)
    analyzed = text_field_options(connection.settings.bm25_stop_words) if bm25 else {}
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX, **analyzed)
    schema.add_field("source", DataType.VARCHAR, max_length=4096)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("produced_at_ms", DataType.INT64)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    if bm25:
        add_bm25(schema)
    return schema


def ensure_loaded(  # noqa: PLR0917 - each argument names one part of the collection
    connection: MilvusConnection,
    collection: str,
    schema: Callable[[], CollectionSchema],
    vector_field: str,
    metric: str,
    sparse_index: str | None = None,
) -> None:
    """Create `collection` with `schema` and an AUTOINDEX on `vector_field` unless it exists; load it.

    `sparse_index` names a BM25 sparse field to index as well.
    """
    client = connection.client
    if connection.call(lambda: client.has_collection(collection)):
        # A restarted server keeps collections released; searching one needs it loaded (idempotent).
        connection.call(lambda: connection.load(collection))
        return
    index = client.prepare_index_params()
    index.add_index(field_name=vector_field, index_type="AUTOINDEX", metric_type=metric)
    if sparse_index:
        index.add_index(field_name=sparse_index, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    try:
        connection.call(
            lambda: client.create_collection(
                collection,
                schema=schema(),
                index_params=index,
                consistency_level=connection.settings.consistency_level,
            )
        )
    except RagbusError:
        # Another process created it between our check and our create.
        if not connection.call(lambda: client.has_collection(collection)):
            raise
    if connection.settings.replica_number > 1:
        connection.call(lambda: connection.load(collection))  # created loaded with one replica
    log.info("created Milvus collection %s", collection)


def check_dim(connection: MilvusConnection, collection: str, dim: int) -> None:
    """Refuse (permanently) a collection whose vectors have another dimension than the model's."""
    info = connection.call(lambda: connection.client.describe_collection(collection))
    for field in info["fields"]:
        if field["name"] == "embedding" and int(field["params"]["dim"]) != dim:
            raise PermanentError(
                f"collection {collection} holds {field['params']['dim']}-dim vectors but the model makes "
                f"{dim}: reindex into a new collection (ragbus reindex)",
                code="dimension_mismatch",
            )


def has_bm25(connection: MilvusConnection, collection: str) -> bool:
    """Whether `collection` (or the alias) has the BM25 field."""
    return described_with_bm25(connection.description(collection))


def has_metadata_fields(connection: MilvusConnection, collection: str) -> bool:
    """Whether `collection` copies metadata keys into `md_<key>` dynamic fields (ragbus.milvus.filters)."""
    return bool(connection.description(collection).get("enable_dynamic_field"))
