"""SciFact test split as the benchmarks use it: queries, qrels and a corpus subset that keeps the judged documents."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from producers.sources.files import read_documents
from ragbus.judged_set import load_judged_set
from schemas.documents import DocumentEvent

# The shared datasets folder beside the project; RAGBUS_BENCH_SCIFACT names another place (a git worktree, say).
DATASET = Path(
    os.environ.get("RAGBUS_BENCH_SCIFACT") or Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"
)


@dataclass(frozen=True)
class SciFact:
    """Documents to ingest, queries to ask, and what is relevant to each query (doc_id -> grade)."""

    documents: list[DocumentEvent]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_scifact(docs: int | None = None, queries: int | None = None, dataset: Path = DATASET) -> SciFact:
    """The whole test split, or its first `queries` judged queries over `docs` documents that include theirs."""
    judged = load_judged_set(dataset, "test", queries)
    corpus = read_documents([dataset / "corpus.jsonl"])
    if docs is not None and docs < len(corpus):
        # The judged documents first, so a small run can still find what its queries ask for.
        wanted = {doc for relevant in judged.qrels.values() for doc in relevant}
        judged_docs = [e for e in corpus if e.doc_id in wanted]
        others = [e for e in corpus if e.doc_id not in wanted]
        corpus = (judged_docs + others)[: max(docs, len(judged_docs))]
    return SciFact(corpus, judged.queries, judged.qrels)
