"""SciFact test split as the benchmarks use it: queries, qrels and a corpus subset that keeps the judged documents."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import orjson

from producers.sources.files import read_documents
from schemas.documents import DocumentEvent

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact"


@dataclass(frozen=True)
class SciFact:
    """Documents to ingest, queries to ask, and what is relevant to each query (doc_id -> grade)."""

    documents: list[DocumentEvent]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    judged: dict[str, dict[str, int]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            judged.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return judged


def load_scifact(docs: int | None = None, queries: int | None = None, dataset: Path = DATASET) -> SciFact:
    """The whole test split, or its first `queries` judged queries over `docs` documents that include theirs."""
    qrels = _qrels(dataset / "qrels" / "test.tsv")
    texts = {}
    for line in (dataset / "queries.jsonl").read_text().splitlines():
        row = orjson.loads(line)
        if row["_id"] in qrels:
            texts[row["_id"]] = row["text"]
    chosen = list(texts)[:queries] if queries else list(texts)
    corpus = read_documents([dataset / "corpus.jsonl"])
    if docs is not None and docs < len(corpus):
        # The judged documents first, so a small run can still find what its queries ask for.
        wanted = {doc for q in chosen for doc in qrels[q]}
        judged = [e for e in corpus if e.doc_id in wanted]
        others = [e for e in corpus if e.doc_id not in wanted]
        corpus = (judged + others)[: max(docs, len(judged))]
    return SciFact(corpus, {q: texts[q] for q in chosen}, {q: qrels[q] for q in chosen})
