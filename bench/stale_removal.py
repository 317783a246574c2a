"""What the indexer's write for one changed document costs, removing earlier chunks by key or by a filtered delete.

    python -m bench.stale_removal [--engine milvus-lite] [--docs 5183] [--updates 60]

Starts its own Milvus (milvus-lite by default) and fills two chunk collections alike: every SciFact abstract as a
two-chunk document (random unit vectors; the embedding model is not what is measured), sealed as the indexer's
sealer leaves them. One collection's document states record chunk sets (removal by primary key, ragbus now); the
other's are in the earlier layout (removal by a filtered delete that scans the collection). Then it applies the same
one-chunk updates to both, alternating, and times each VersionApplier.fresh + apply: the indexer's whole Milvus
write for a document. Writes bench/results/stale-removal.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench.scifact import load_scifact
from bench.scoring import summary_ms
from bench.stack import ENGINES, ROOT, save_result, start_milvus
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import MilvusSettings
from ragbus.stack.process import free_port
from schemas.chunks import chunk_id_for
from schemas.documents import DocumentEvent, DocumentOp
from schemas.embeddings import EmbeddedChunk, EmbeddedDocument, pack_vector
from workers.indexer.applier import VersionApplier

DIM = 384
LAYOUTS = {"by_key": True, "by_filter": False}  # layout -> states record chunk sets


def embedded(doc: DocumentEvent, version: int, chunks: int, rng: np.random.Generator) -> EmbeddedDocument:
    """`doc` at `version` cut into `chunks` equal slices, with random unit vectors."""
    vectors = rng.standard_normal((chunks, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    step = max(1, len(doc.text) // chunks)
    parts = [
        EmbeddedChunk(
            chunk_id=chunk_id_for(doc.tenant, doc.doc_id, version, i),
            index=i,
            text=doc.text[i * step : (i + 1) * step] or doc.title,
            start=i * step,
            end=(i + 1) * step,
            token_count=64,
            vector=pack_vector(vectors[i]),
        )
        for i in range(chunks)
    ]
    return EmbeddedDocument(
        event_id=f"{doc.doc_id}-{version}",
        op=DocumentOp.UPSERT,
        doc_id=doc.doc_id,
        tenant=doc.tenant,
        version=version,
        title=doc.title,
        metadata=doc.metadata,
        produced_at=datetime.now(UTC),
        model="random",
        dim=DIM,
        chunks=parts,
    )


def fill(
    store: MilvusChunkStore,
    collection: str,
    docs: list[DocumentEvent],
    record_chunks: bool = True,
    metadata_fields: bool = True,
) -> float:
    """Create `collection` and its states in the chosen layouts, index every document at version 1; seconds."""
    started = time.perf_counter()
    MilvusDocumentStates(store).ensure(collection, record_chunks=record_chunks)
    store.ensure_collection(collection, DIM, metadata_fields=metadata_fields)
    applier = VersionApplier(store, "bench")
    rng = np.random.default_rng(0)
    for start in range(0, len(docs), 256):
        batch = [embedded(doc, 1, 2, rng) for doc in docs[start : start + 256]]
        fresh, known = applier.fresh(collection, batch)
        applier.apply(collection, fresh, known)
    for name in (collection, MilvusDocumentStates.collection_for(collection)):
        store.client.flush(name)
    return time.perf_counter() - started


def versions_of(store: MilvusChunkStore, collection: str, doc: DocumentEvent) -> set[int]:
    """Versions `collection` holds chunks of, for `doc` (a Strong read)."""
    rows = store.client.query(
        collection,
        filter=f"tenant == {milvus_str(doc.tenant)} and doc_id == {milvus_str(doc.doc_id)}",
        output_fields=["version"],
        consistency_level="Strong",
    )
    return {int(row["version"]) for row in rows}


def measure(engine: str, docs: list[DocumentEvent], updates: int) -> dict[str, object]:
    """Both layouts on one server, the same updates alternating between them."""
    with tempfile.TemporaryDirectory(prefix="ragbus-stale-") as home:
        port = free_port()
        process = start_milvus(engine, Path(home), port)
        store = MilvusChunkStore(MilvusSettings(alias="stale_bench"), f"http://127.0.0.1:{port}")
        try:
            filled = {layout: fill(store, f"stale_{layout}", docs, record) for layout, record in LAYOUTS.items()}
            appliers = {layout: VersionApplier(store, "bench") for layout in LAYOUTS}
            took: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
            rng = np.random.default_rng(1)
            for i in range(updates):
                doc = docs[int(rng.integers(len(docs)))]
                change = embedded(doc, 2 + i, 1, rng)
                order = list(LAYOUTS) if i % 2 == 0 else list(reversed(LAYOUTS))
                for layout in order:
                    collection = f"stale_{layout}"
                    began = time.perf_counter()
                    fresh, known = appliers[layout].fresh(collection, [change])
                    appliers[layout].apply(collection, fresh, known)
                    took[layout].append(time.perf_counter() - began)
                    assert versions_of(store, collection, doc) == {2 + i}, f"{layout} left stale chunks"
        finally:
            store.close()
            process.stop(timeout_s=60)
    return {
        "fill_seconds": {layout: round(s, 1) for layout, s in filled.items()},
        "apply_one_changed_document": {layout: summary_ms(seconds) for layout, seconds in took.items()},
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=ENGINES, default="milvus-lite")
    parser.add_argument("--docs", type=int, default=None, help="documents to index first (default: all 5,183)")
    parser.add_argument("--updates", type=int, default=60, help="changed documents applied to each layout")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stale-removal.json")
    args = parser.parse_args()
    docs = load_scifact(args.docs, 0).documents
    result = {
        "benchmark": "stale_removal",
        "engine": args.engine,
        "documents": len(docs),
        "chunks_per_document": 2,
        "updates": args.updates,
        **measure(args.engine, docs, args.updates),
    }
    save_result(result, args.out, "apply_one_changed_document")


if __name__ == "__main__":
    main()
