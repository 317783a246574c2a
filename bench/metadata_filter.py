"""What a metadata filter costs a search, on each chunk-collection layout: md_<key> dynamic fields or JSON paths.

    python -m bench.metadata_filter [--engine milvus-lite] [--docs 5183] [--searches 30]

Starts its own Milvus (milvus-lite by default) and fills two chunk collections alike with every SciFact abstract as
a two-chunk document (random unit vectors) carrying metadata {"shard": 0..19}: one in the current layout (each key
also in an md_<key> dynamic field, filters on those), one in the layout before 27 Nov 2026 (filters on JSON paths of
the metadata field). Then it times the same top-5 searches on both, alternating: dense and hybrid (where the server
does BM25, with SciFact test questions as text), unfiltered and filtered on one shard. Writes
bench/results/metadata-filter.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.scifact import load_scifact
from bench.scoring import summary_ms
from bench.stack import ENGINES, ROOT, save_result, start_milvus
from bench.stale_removal import DIM, fill
from query_api.metadata_filter import metadata_filter
from ragbus.milvus.filters import MetadataWhere
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import MilvusSettings
from ragbus.stack.process import free_port

LAYOUTS = {"md_fields": True, "json_path": False}  # layout -> metadata copied into md_<key> dynamic fields
SHARDS = 20


def measure(engine: str, docs_count: int | None, searches: int) -> dict[str, object]:
    """Both layouts on one server; every search shape on both, alternating."""
    data = load_scifact(docs_count, None)
    docs = [d.model_copy(update={"metadata": {"shard": i % SHARDS}}) for i, d in enumerate(data.documents)]
    questions = list(data.queries.values())
    with tempfile.TemporaryDirectory(prefix="ragbus-filter-") as home:
        port = free_port()
        process = start_milvus(engine, Path(home), port)
        store = MilvusChunkStore(MilvusSettings(alias="filter_bench"), f"http://127.0.0.1:{port}")
        try:
            for layout, fields in LAYOUTS.items():
                fill(store, f"filter_{layout}", docs, metadata_fields=fields)
            hybrid = store.has_bm25("filter_md_fields")
            rng = np.random.default_rng(2)
            took: dict[str, list[float]] = {}
            hits: dict[str, int] = {}
            for i in range(searches):
                vector = rng.standard_normal(DIM).astype(np.float32)
                vector = (vector / np.linalg.norm(vector)).tolist()
                where = metadata_filter({"shard": i % SHARDS})
                text = questions[i % len(questions)] if hybrid else None
                shapes: dict[str, tuple[MetadataWhere | None, str | None]] = {
                    "dense": (None, None),
                    "dense_filtered": (where, None),
                }
                if text:
                    shapes |= {"hybrid": (None, text), "hybrid_filtered": (where, text)}
                order = list(LAYOUTS) if i % 2 == 0 else list(reversed(LAYOUTS))
                for layout in order:
                    for shape, (narrow, words) in shapes.items():
                        began = time.perf_counter()
                        found = store.search(vector, 5, "default", narrow, collection=f"filter_{layout}", text=words)
                        took.setdefault(f"{layout}/{shape}", []).append(time.perf_counter() - began)
                        hits[f"{layout}/{shape}"] = hits.get(f"{layout}/{shape}", 0) + len(found)
        finally:
            store.close()
            process.stop(timeout_s=60)
    return {
        "documents": len(docs),
        "search_top5": {name: summary_ms(seconds) for name, seconds in took.items()},
        "hits_returned": hits,
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=ENGINES, default="milvus-lite")
    parser.add_argument("--docs", type=int, default=None, help="documents to index (default: all 5,183)")
    parser.add_argument("--searches", type=int, default=30, help="searches of each shape on each layout")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "metadata-filter.json")
    args = parser.parse_args()
    result = {
        "benchmark": "metadata_filter",
        "engine": args.engine,
        "searches": args.searches,
        **measure(args.engine, args.docs, args.searches),
    }
    save_result(result, args.out, "search_top5")


if __name__ == "__main__":
    main()
