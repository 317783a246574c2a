"""QueryService: cache → embed → search → answer (LLM or extractive) → cache."""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from query_api import metrics
from query_api.cache import QueryCache
from query_api.extractive import extractive_answer
from query_api.generation import LLMAnswerer
from query_api.models import Citation, QueryResponse
from ragbus.embedding import SentenceEmbedder
from ragbus.errors import TransientError
from ragbus.milvus_store import ChunkHit, MilvusChunkStore
from ragbus.settings import ApiSettings

log = logging.getLogger(__name__)


class QueryService:
    """Answers questions for one tenant at a time."""

    def __init__(
        self,
        settings: ApiSettings,
        embedder: SentenceEmbedder,
        store: MilvusChunkStore,
        cache: QueryCache,
        llm: LLMAnswerer | None,
    ) -> None:
        self.settings, self.embedder, self.store, self.cache, self.llm = settings, embedder, store, cache, llm

    async def answer(self, query: str, top_k: int, tenant: str = "default") -> QueryResponse:
        """A grounded answer with citations; cached when the same question was answered at this generation."""
        started = time.perf_counter()
        mode = "llm" if self.llm else "extractive"
        try:
            key: str | None = await self.cache.key_for(tenant, query, top_k, mode)
        except TransientError as exc:
            log.warning("query cache skipped: %s", exc)
            key = None
        if key and (hit := await self.cache.get(key)):
            metrics.QUERIES.labels("true", str(hit.degraded).lower()).inc()
            return hit.model_copy(update={"cached": True, "took_ms": _ms(started)})
        vector, hits = await self.retrieve(query, top_k, tenant)
        answer, degraded = await self._compose(query, vector, hits)
        response = QueryResponse(
            answer=answer,
            citations=[
                Citation(doc_id=h.doc_id, chunk_id=h.chunk_id, title=h.title, text=h.text, score=h.score) for h in hits
            ],
            cached=False,
            degraded=degraded,
            took_ms=_ms(started),
        )
        if key and not degraded:
            await self.cache.put(key, response)
        metrics.QUERIES.labels("false", str(degraded).lower()).inc()
        metrics.QUERY_SECONDS.observe(time.perf_counter() - started)
        return response

    async def retrieve(self, query: str, top_k: int, tenant: str) -> tuple[np.ndarray, list[ChunkHit]]:
        """The query's vector and the top_k passages of `tenant` closest to it."""
        started = time.perf_counter()
        vector = (await asyncio.to_thread(self.embedder.encode, [query], check_length=False))[0]
        hits = await asyncio.to_thread(self.store.search, vector.tolist(), top_k, tenant)
        metrics.RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
        return vector, hits

    async def _compose(self, query: str, vector: np.ndarray, hits: list[ChunkHit]) -> tuple[str, bool]:
        if hits and self.llm is not None:
            try:
                return await self.llm.answer(query, hits), False
            except TransientError as exc:
                metrics.ERRORS.labels("llm").inc()
                log.warning("LLM failed, answering extractively: %s", exc)
                return await self._extractive(query, vector, hits), True
        return await self._extractive(query, vector, hits), False

    async def _extractive(self, query: str, vector: np.ndarray, hits: list[ChunkHit]) -> str:
        def semantic(sentences: list[str]) -> list[float]:
            # Cosine similarity of each sentence to the question (vectors are unit length).
            return (self.embedder.encode(sentences, check_length=False) @ vector).tolist()

        passages = self.settings.answer_passages
        return await asyncio.to_thread(extractive_answer, query, hits, passages, 2, semantic)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
