"""BM25 full-text search in Milvus, for hybrid (BM25 + dense) retrieval: asked of the server, never assumed.

Servers that have the BM25 function (Milvus 2.5+, milvus-lite 3.2) turn a chunk's text into a sparse vector on
insert and a query's text into one on search. `supports_bm25` asks the server with a throw-away collection;
older servers (the Milvus 2.3 engine) refuse it, and ragbus then keeps its collections dense-only.

The analyzer leaves out English stop words by default (RAGBUS_MILVUS_BM25_STOP_WORDS). A question's "the", "of"
and "in" each match nearly every chunk: they add next to nothing to a BM25 score (their IDF is near zero) but cost
a scan of their posting lists, and on milvus-lite, which scores in Python, they were most of a search's time.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from pymilvus import CollectionSchema, DataType, Function, FunctionType, MilvusClient

from ragbus.settings import BM25StopWords

log = logging.getLogger(__name__)
SPARSE_FIELD = "sparse"
TEXT_FIELD = "text"
# Lucene's English stop words (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET), listed rather than named by Milvus's
# "_english_", so every server that has the stop filter reads the same list.
# fmt: off
ENGLISH_STOP_WORDS = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
]
# fmt: on


def text_field_options(stop_words: BM25StopWords) -> dict[str, Any]:
    """Keyword arguments of the analyzed text field that BM25 reads: the standard analyzer, stop words left out."""
    if stop_words == "none":
        return {"enable_analyzer": True}
    analyzer = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ENGLISH_STOP_WORDS}]}
    return {"enable_analyzer": True, "analyzer_params": analyzer}


def add_bm25(schema: CollectionSchema) -> None:
    """The sparse field and the BM25 function that fills it from the (analyzed) text field."""
    schema.add_field(SPARSE_FIELD, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="text_bm25",
            function_type=FunctionType.BM25,
            input_field_names=[TEXT_FIELD],
            output_field_names=[SPARSE_FIELD],
        )
    )


def has_bm25(description: dict[str, object]) -> bool:
    """Whether a collection (as `describe_collection` returns it) carries the BM25 sparse field."""
    fields = description.get("fields")
    return isinstance(fields, list) and any(isinstance(f, dict) and f.get("name") == SPARSE_FIELD for f in fields)


def supports_bm25(client: MilvusClient, stop_words: BM25StopWords = "english") -> bool:
    """Try a BM25 round trip (create, insert, search by text, drop); any refusal means not supported.

    The probe's text field has the analyzer new collections would get, so a server that refuses it says so here.
    """
    name = f"ragbus_bm25_probe_{uuid.uuid4().hex[:8]}"
    try:
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(TEXT_FIELD, DataType.VARCHAR, max_length=1000, **text_field_options(stop_words))
        add_bm25(schema)
        index = client.prepare_index_params()
        index.add_index(field_name=SPARSE_FIELD, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        client.insert(name, [{"id": 1, TEXT_FIELD: "koalas eat eucalyptus"}, {"id": 2, TEXT_FIELD: "kafka logs"}])
        hits = client.search(name, data=["what do koalas eat"], anns_field=SPARSE_FIELD, limit=1, output_fields=["id"])
        supported = bool(hits and hits[0] and hits[0][0]["id"] == 1)
    except Exception as exc:  # any refusal by the server is the answer
        log.info("Milvus server does not do BM25 full-text search (%s): collections stay dense-only", exc)
        supported = False
    finally:
        with contextlib.suppress(Exception):  # best-effort clean-up on a server that may be refusing
            if client.has_collection(name):
                client.drop_collection(name)
    return supported
