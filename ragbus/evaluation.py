"""Retrieval quality of a deployment on a judged set: nDCG@10, recall@10/100 and MRR@10, per query and mean.

A document's rank is that of its best passage (search returns passages; a document's later passages are dropped).
Rankings come from the query API (`ApiRanker`) or straight from a named collection (`CollectionRanker`), which
searches as the API does: the same model as the collection's pipeline, hybrid where the API is.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from types import TracebackType

import httpx

from ragbus.embedding import SentenceEmbedder
from ragbus.errors import InputError, TransientError
from ragbus.judged_set import JudgedSet
from ragbus.milvus.collections import MilvusCollectionAdmin
from ragbus.milvus.store import MilvusChunkStore
from ragbus.ranking_metrics import ndcg_at_k, recall_at_k, reciprocal_rank_at_k
from ragbus.settings import EmbeddingSettings, Settings

# Enough passages to rank 100 distinct documents when documents make about 2 passages each (SciFact abstracts).
PASSAGES = 300

Ranker = Callable[[str], list[str]]  # question -> document ids, best first
AsyncRanker = Callable[[str], Awaitable[list[str]]]
ProgressCallback = Callable[[int, int], None]  # (queries done, queries in all)


@dataclass(frozen=True)
class QueryScore:
    """One judged query's figures."""

    query_id: str
    query: str
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    reciprocal_rank_at_10: float
    documents_ranked: int


@dataclass(frozen=True)
class EvaluationReport:
    """Every query's figures and their means."""

    judged_set: str
    target: str  # what was searched: a collection or an API URL
    scores: list[QueryScore]

    def mean(self, field: str) -> float:
        """The mean of one QueryScore figure over the queries."""
        return statistics.fmean(getattr(score, field) for score in self.scores) if self.scores else 0.0

    @property
    def ndcg_at_10(self) -> float:
        """Mean nDCG@10: the figure a quality gate compares."""
        return self.mean("ndcg_at_10")

    def worst(self, n: int) -> list[QueryScore]:
        """The `n` queries with the lowest nDCG@10 (then the lowest recall@100)."""
        return sorted(self.scores, key=lambda s: (s.ndcg_at_10, s.recall_at_100, s.query_id))[:n]

    def summary(self) -> dict[str, object]:
        """The means, rounded, for printing and JSON."""
        return {
            "judged_set": self.judged_set,
            "target": self.target,
            "queries": len(self.scores),
            "ndcg_at_10": round(self.ndcg_at_10, 4),
            "recall_at_10": round(self.mean("recall_at_10"), 4),
            "recall_at_100": round(self.mean("recall_at_100"), 4),
            "mrr_at_10": round(self.mean("reciprocal_rank_at_10"), 4),
            "min_documents_ranked": min((s.documents_ranked for s in self.scores), default=0),
        }

    def as_json(self, worst: int) -> dict[str, object]:
        """The summary and the worst queries."""
        return self.summary() | {"worst": [asdict(score) for score in self.worst(worst)]}


def evaluate(
    judged: JudgedSet, ranker: Ranker, target: str, on_progress: ProgressCallback | None = None
) -> EvaluationReport:
    """Rank every judged query with `ranker` and score the rankings against the judgments."""
    scores: list[QueryScore] = []
    total = len(judged.queries)
    for done, (query_id, text) in enumerate(judged.queries.items(), 1):
        scores.append(score_query(query_id, text, ranker(text), judged.qrels[query_id]))
        if on_progress:
            on_progress(done, total)
    return EvaluationReport(judged.name, target, scores)


async def evaluate_async(judged: JudgedSet, rank: AsyncRanker, target: str) -> EvaluationReport:
    """evaluate() for a ranker that is a coroutine (the query API's own retrieval)."""
    scores = [
        score_query(query_id, text, await rank(text), judged.qrels[query_id])
        for query_id, text in judged.queries.items()
    ]
    return EvaluationReport(judged.name, target, scores)


def score_query(query_id: str, text: str, ranked: list[str], relevant: dict[str, int]) -> QueryScore:
    """One query's figures from its ranking."""
    return QueryScore(
        query_id=query_id,
        query=text,
        ndcg_at_10=ndcg_at_k(ranked, relevant, 10),
        recall_at_10=recall_at_k(ranked, relevant, 10),
        recall_at_100=recall_at_k(ranked, relevant, 100),
        reciprocal_rank_at_10=reciprocal_rank_at_k(ranked, relevant, 10),
        documents_ranked=len(ranked),
    )


class CollectionRanker:
    """Ranks documents by searching one collection directly, as the query API would search it."""

    def __init__(
        self,
        settings: Settings,
        collection: str,
        embedding: EmbeddingSettings | None = None,
        *,
        tenant: str = "default",
        passages: int = PASSAGES,
    ) -> None:
        self.settings, self.collection, self.tenant, self.passages = settings, collection, tenant, passages
        self.embedder = SentenceEmbedder(embedding or settings.embedding).load()
        self.store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        if not MilvusCollectionAdmin(self.store).exists(collection):
            self.store.close()
            raise InputError(f"collection {collection!r} does not exist")

    def __call__(self, query: str) -> list[str]:
        """Document ids of the collection's passages closest to `query`, best first."""
        vector = self.embedder.encode([query], check_length=False)[0].tolist()
        text = query if self.settings.api.retrieval == "hybrid" else None
        hits = self.store.search(
            vector, self.passages, self.tenant, collection=self.collection, text=text, rrf_k=self.settings.api.rrf_k
        )
        return list(dict.fromkeys(hit.doc_id for hit in hits))

    def close(self) -> None:
        """Close the Milvus connection."""
        self.store.close()

    def __enter__(self) -> CollectionRanker:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()


class ApiRanker:
    """Ranks documents through a running query API (retrieval only: no answer is composed)."""

    def __init__(self, url: str, credential: str | None = None, *, passages: int = PASSAGES) -> None:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        self.url, self.passages = url.rstrip("/"), passages
        self.client = httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def __call__(self, query: str) -> list[str]:
        """Document ids in the order of their best passage, as the API ranks them."""
        try:
            response = self.client.post(
                "/v1/query", json={"query": query, "top_k": self.passages, "retrieve_only": True}
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"query API at {self.url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise InputError(f"query API at {self.url} answered {response.status_code}: {response.text[:300]}")
        return list(dict.fromkeys(c["doc_id"] for c in response.json()["citations"]))

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()

    def __enter__(self) -> ApiRanker:
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.close()
