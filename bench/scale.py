"""Scale: a chunk collection grown to a million chunks; load time, memory, search latency and recall at each size.

    python -m bench.scale [--engine milvus-server|milvus-lite] [--sizes 100000,300000,1000000] [--queries 300]
                          [--ef 0,64,128]

The vectors are realistic, not uniform noise: SciFact abstracts are embedded with the real model (the first
`--centres` of them), and each chunk is one of those vectors plus Gaussian noise (cosine about 0.8 to its centre),
normalised; its text is that abstract's, so each row weighs what a real chunk weighs. The questions are SciFact's
test queries, embedded with the same model. The collection is ragbus's own (`ensure_collection`: its schema and
its AUTOINDEX), grown in steps; at each size it is flushed, indexed and loaded, and then:

- load time: seconds to insert the step's rows, and until the index covers them and the collection is loaded;
- memory: resident set of the Milvus server's processes (every process whose command line names milvus);
- search: ragbus's own search (the tenant filter, the output fields of a citation; at the last write's mark, as
  the API reads) at concurrency 1 and 8: p50/p95 and searches/s;
- recall@10: the index's top 10 against the exact top 10 (numpy, inner product of unit vectors, the same filter).

Writes bench/results/scale-<engine>.json.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.scifact import load_scifact
from bench.scoring import summary_ms
from bench.stack import ENGINES, ROOT, bench_stack, save_result
from ragbus.embedding import SentenceEmbedder
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import MilvusSettings, Settings

DIM = 384
NOISE = 0.04  # per dimension: |noise| is about 0.78, a cosine of about 0.79 to the centre
INSERT_BATCH = 2000


def milvus_rss_bytes() -> int:
    """Resident memory of every process whose command line names milvus (Linux /proc)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
            if "milvus" not in command.lower() or "bench.scale" in command:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def chunk_vectors(centres: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` unit vectors around the centres, and which centre each came from."""
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, len(centres), size=count)
    vectors = centres[owner] + rng.standard_normal((count, centres.shape[1]), dtype=np.float32) * NOISE
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), owner


def exact_top(vectors: np.ndarray, questions: np.ndarray, k: int = 10) -> list[set[int]]:
    """Row numbers of each question's exact top k by inner product."""
    best_scores = np.full((len(questions), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(questions), k), dtype=np.int64)
    for start in range(0, len(vectors), 200_000):
        scores = questions @ vectors[start : start + 200_000].T
        rows = np.argpartition(-scores, k, axis=1)[:, :k]
        merged_scores = np.concatenate([best_scores, np.take_along_axis(scores, rows, axis=1)], axis=1)
        merged_rows = np.concatenate([best_rows, rows + start], axis=1)
        keep = np.argsort(-merged_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(merged_scores, keep, axis=1)
        best_rows = np.take_along_axis(merged_rows, keep, axis=1)
    return [set(row.tolist()) for row in best_rows]


def insert(
    store: MilvusChunkStore, collection: str, vectors: np.ndarray, owner: np.ndarray, offset: int, texts: list[str]
) -> None:
    """Rows `offset`.. of the collection, as the indexer writes chunks."""
    for start in range(0, len(vectors), INSERT_BATCH):
        rows = [
            {
                "chunk_id": f"scale-{offset + start + i}",
                "doc_id": f"scale/{owner[start + i]}",
                "tenant": "default",
                "version": 1,
                "chunk_index": offset + start + i,
                "title": f"abstract {owner[start + i]}",
                "text": texts[owner[start + i]],
                "source": "bench.scale",
                "metadata": {},
                "produced_at_ms": 0,
                "embedding": vector.tolist(),
            }
            for i, vector in enumerate(vectors[start : start + INSERT_BATCH])
        ]
        store.call(lambda rows=rows: store.client.insert(collection, rows))


def indexed_and_loaded(store: MilvusChunkStore, collection: str, rows: int, timeout_s: float = 3600) -> None:
    """Flush, wait until the vector index covers `rows` rows, and load the collection."""
    store.client.flush(collection)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = store.client.describe_index(collection, "embedding")
        if int(described.get("indexed_rows", rows)) >= rows and int(described.get("pending_index_rows", 0)) == 0:
            break
        time.sleep(1.0)
    else:
        raise TimeoutError(f"the index of {collection} did not cover {rows} rows in {timeout_s} s")
    store.client.release_collection(collection)
    store.client.load_collection(collection)


def searched(
    store: MilvusChunkStore, collection: str, questions: np.ndarray, concurrency: int, written: int | None
) -> tuple[list[float], list[list[str]], float]:
    """Seconds per search, each question's chunk ids, and the wall time, `concurrency` at a time."""

    def one(vector: np.ndarray) -> tuple[float, list[str]]:
        began = time.perf_counter()
        hits = store.search(vector.tolist(), 10, "default", collection=collection, written=written)
        return time.perf_counter() - began, [hit.chunk_id for hit in hits]

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, questions))
    return [r[0] for r in results], [r[1] for r in results], time.perf_counter() - began


def searching(settings: Settings, ef: int) -> MilvusSettings:
    """The Milvus settings of a reader searching at breadth `ef` (RAGBUS_MILVUS_SEARCH_EF)."""
    return settings.milvus.model_copy(update={"search_ef": ef})


def search_figures(
    store: MilvusChunkStore,
    collection: str,
    questions: np.ndarray,
    concurrency: int,
    written: int | None,
    exact: list[set[int]],
) -> dict[str, object]:
    """Latency, searches/s and recall@10 of every question, `concurrency` at a time."""
    seconds, found, wall = searched(store, collection, questions, concurrency, written)
    recall = [
        len({int(cid.split("-")[1]) for cid in ids} & truth) / 10 for ids, truth in zip(found, exact, strict=True)
    ]
    return {
        **summary_ms(seconds),
        "searches_per_s": round(len(seconds) / wall, 1),
        "recall_at_10": round(float(np.mean(recall)), 4),
    }


def measure(
    settings: Settings,
    sizes: list[int],
    centres: np.ndarray,
    texts: list[str],
    questions: np.ndarray,
    efs: tuple[int, ...] = (0,),
) -> list[dict[str, object]]:
    """Grow one collection through `sizes`; the figures at each."""
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    collection = settings.milvus.initial_collection
    store.ensure_collection(collection, DIM)
    all_vectors = np.zeros((0, DIM), dtype=np.float32)
    results: list[dict[str, object]] = []
    try:
        for step, size in enumerate(sizes):
            vectors, owner = chunk_vectors(centres, size - len(all_vectors), seed=step)
            began = time.perf_counter()
            insert(store, collection, vectors, owner, len(all_vectors), texts)
            inserted_s = time.perf_counter() - began
            indexed_and_loaded(store, collection, size)
            ready_s = time.perf_counter() - began
            all_vectors = np.concatenate([all_vectors, vectors])
            written = store.last_write_ts([collection, MilvusDocumentStates.collection_for(collection)]) or None
            searched(store, collection, questions[:20], 1, written)  # warm
            exact = exact_top(all_vectors, questions)
            figures: dict[str, object] = {
                "chunks": size,
                "insert_s": round(inserted_s, 1),
                "insert_rows_per_s": round(len(vectors) / inserted_s),
                "until_indexed_and_loaded_s": round(ready_s, 1),
                "milvus_rss_mib": round(milvus_rss_bytes() / 2**20),
                "raw_vectors_mib": round(all_vectors.nbytes / 2**20),
            }
            for ef in efs:  # 0: the engine's default breadth, keys as before; others under search_by_ef
                reader = store if not ef else MilvusChunkStore(searching(settings, ef), settings.milvus_uri)
                try:
                    by_concurrency = {
                        concurrency: search_figures(reader, collection, questions, concurrency, written, exact)
                        for concurrency in (1, 8)
                    }
                finally:
                    if reader is not store:
                        reader.close()
                if ef:
                    by_ef = figures.setdefault("search_by_ef", {})
                    by_ef[str(ef)] = {f"c{c}": f for c, f in by_concurrency.items()}  # type: ignore[index]
                else:
                    figures |= {f"search_c{c}": f for c, f in by_concurrency.items()}
            print(figures, flush=True)
            results.append(figures)
    finally:
        store.close()
    return results


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=ENGINES, default="milvus-server")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--centres", type=int, default=2000, help="SciFact abstracts embedded as cluster centres")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--ef",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=(0,),
        help="search breadths (RAGBUS_MILVUS_SEARCH_EF) to measure at each size; 0 = the engine's default",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.sizes != sorted(args.sizes):
        parser.error("--sizes grow: give them in increasing order")
    data = load_scifact(None, None)
    abstracts = data.documents[: args.centres]
    texts = [doc.text[:2000] for doc in abstracts]
    with bench_stack(args.engine) as (_env, settings, _home):
        model = SentenceEmbedder(settings.embedding).load()
        centres = model.encode(texts, check_length=False)
        questions = model.encode(list(data.queries.values())[: args.queries], check_length=False)
        results = measure(settings, args.sizes, centres, texts, questions, args.ef)
    out = args.out or ROOT / "bench" / "results" / f"scale-{args.engine}.json"
    result = {
        "benchmark": "scale",
        "engine": args.engine,
        "index": "AUTOINDEX (ragbus's collection)",
        "vectors": f"{args.centres} real SciFact abstract embeddings as centres, Gaussian noise {NOISE} per dimension",
        "questions": len(questions),
        "sizes": results,
    }
    save_result(result, out, "sizes")


if __name__ == "__main__":
    main()
