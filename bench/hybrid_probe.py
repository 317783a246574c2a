"""Does this Milvus server do BM25 full-text search (needed for hybrid BM25 + dense retrieval)? Asked, not assumed.

    python -m bench.hybrid_probe --uri http://127.0.0.1:19530

Creates a throw-away collection with a BM25 function (text -> sparse vector), inserts two rows, searches it by
text, and drops it. Prints and returns {"supported": bool, "server_version": ..., "detail": ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import uuid

from pymilvus import DataType, Function, FunctionType, MilvusClient


def probe_bm25(uri: str, token: str = "") -> dict[str, object]:
    """Try a BM25 round trip on the server at `uri`; any refusal means not supported."""
    client = MilvusClient(uri=uri, token=token, timeout=30)
    name = f"bm25_probe_{uuid.uuid4().hex[:8]}"
    version = "unknown"
    try:
        version = str(client.get_server_version())
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]
            )
        )
        index = client.prepare_index_params()
        index.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
        client.insert(name, [{"id": 1, "text": "koalas eat eucalyptus"}, {"id": 2, "text": "kafka orders records"}])
        hits = client.search(name, data=["what do koalas eat"], anns_field="sparse", limit=1, output_fields=["id"])
        top = hits[0][0]["id"] if hits and hits[0] else None
        supported = top == 1
        detail = "BM25 search returned the matching row" if supported else f"BM25 search returned {top!r}"
    except Exception as exc:  # any refusal by the server is the answer
        supported, detail = False, f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        with contextlib.suppress(Exception):  # best-effort clean-up on a server that may be refusing
            if client.has_collection(name):
                client.drop_collection(name)
        client.close()
    return {"supported": supported, "server_version": version, "detail": detail}


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uri", required=True)
    print(json.dumps(probe_bm25(parser.parse_args().uri), indent=2))


if __name__ == "__main__":
    main()
