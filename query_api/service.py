"""QueryService: cache → single flight → embed → search replicas → answer (LLM chain or extractive) → cache."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import numpy as np

from query_api import metrics
from query_api.cache import CacheSlot, QueryCache
from query_api.extractive import extractive_answer
from query_api.generation import LLMAnswerer, Prompt, keep_valid_citations
from query_api.models import Citation, QueryResponse
from query_api.providers import ChatProvider, ProvidersFailed
from query_api.retrieval import ReplicatedRetriever, SearchQuery, SearchUnavailable
from query_api.single_flight import SingleFlight
from query_api.streaming import StreamEvent, citations_event, delta_event, deltas_of, done_event
from ragbus.embedding import SentenceEmbedder
from ragbus.errors import TransientError
from ragbus.milvus.filters import MetadataWhere
from ragbus.milvus.rows import ChunkHit
from ragbus.settings import ApiSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retrieved:
    """A query's vector and its passages."""

    vector: np.ndarray
    hits: list[ChunkHit]


class QueryService:
    """Answers questions; `tenant` scopes retrieval and the cache."""

    def __init__(
        self,
        *,
        settings: ApiSettings,
        embedder: SentenceEmbedder,
        retriever: ReplicatedRetriever,
        cache: QueryCache,
        flights: SingleFlight,
        llm: LLMAnswerer | None,
    ) -> None:
        self.settings, self.embedder, self.retriever = settings, embedder, retriever
        self.cache, self.flights, self.llm = cache, flights, llm

    # --- whole answers ----------------------------------------------------------------------------------------

    async def answer(
        self,
        query: str,
        top_k: int,
        tenant: str = "default",
        where: MetadataWhere | None = None,
        *,
        compose: bool = True,
    ) -> QueryResponse:
        """A grounded answer with citations; from the cache while no change of the tenant's documents stales it.

        `where`: metadata filter (query_api.metadata_filter), part of the cache key.
        `compose`: False for retrieval only: the passages as citations and an empty answer.
        """
        started = time.perf_counter()
        collection = await self.retriever.serving_collection()
        slot, hit = await self._lookup(tenant, query, top_k, collection, where, compose=compose)

        def compute() -> Awaitable[QueryResponse]:
            return self._compute(query, top_k, tenant, collection=collection, slot=slot, where=where, compose=compose)

        if hit:
            return self._served(hit, started, cached=True)
        if slot is None:
            return self._served(await compute(), started, cached=False)
        response, shared = await self.flights.run(
            slot.key,
            self.cache.keys.flight_lock(slot.key) if self.cache.enabled else None,
            compute,
            lambda: self.cache.get(slot),
        )
        return self._served(response, started, cached=shared or response.cached)

    async def _compute(
        self,
        query: str,
        top_k: int,
        tenant: str,
        *,
        collection: str,
        slot: CacheSlot | None,
        where: MetadataWhere | None = None,
        compose: bool = True,
    ) -> QueryResponse:
        try:
            found = await self.retrieve(query, top_k, tenant, where, collection)
        except SearchUnavailable:
            if stale := await self._last_good(slot):
                return stale
            raise
        answer, cited, degraded = await self._compose(query, found) if compose else ("", found.hits, False)
        response = QueryResponse(answer=answer, citations=_citations(cited), cached=False, degraded=degraded)
        if slot and not degraded:
            await self.cache.put(slot, response)
        return response

    async def _compose(self, query: str, found: Retrieved) -> tuple[str, list[ChunkHit], bool]:
        prompt = self.llm.prompt(query, found.hits) if self.llm and found.hits else None
        if self.llm and prompt and prompt.cited:
            try:
                return await self.llm.answer(prompt), prompt.cited, False
            except ProvidersFailed as exc:
                metrics.ERRORS.labels("llm").inc()
                log.warning("LLM failed, answering extractively: %s", exc)
                return await self._extractive(query, found), found.hits, True
        return await self._extractive(query, found), found.hits, False

    # --- streamed answers -------------------------------------------------------------------------------------

    async def open_stream(
        self, query: str, top_k: int, tenant: str = "default", where: MetadataWhere | None = None
    ) -> AsyncIterator[StreamEvent]:
        """The answer as events. Retrieval happens here, so a failure is an HTTP error, not a broken stream."""
        started = time.perf_counter()
        collection = await self.retriever.serving_collection()
        slot, hit = await self._lookup(tenant, query, top_k, collection, where)
        if hit:
            return self._replay(hit, started, cached=True)
        try:
            found = await self.retrieve(query, top_k, tenant, where, collection)
        except SearchUnavailable:
            if stale := await self._last_good(slot):
                return self._replay(stale, started, cached=True)
            raise
        prompt = self.llm.prompt(query, found.hits) if self.llm and found.hits else None
        if self.llm and prompt and prompt.cited:
            try:
                deltas, provider = await self.llm.stream(prompt)
            except ProvidersFailed as exc:
                metrics.ERRORS.labels("llm").inc()
                log.warning("LLM failed, answering extractively: %s", exc)
                return self._extractive_stream(query, found, started, degraded=True)
            return self._llm_stream(
                query=query, found=found, prompt=prompt, deltas=deltas, provider=provider, slot=slot, started=started
            )
        return self._extractive_stream(query, found, started, degraded=False, slot=slot)

    async def _llm_stream(
        self,
        *,
        query: str,
        found: Retrieved,
        prompt: Prompt,
        deltas: AsyncIterator[str],
        provider: ChatProvider,
        slot: CacheSlot | None,
        started: float,
    ) -> AsyncIterator[StreamEvent]:
        yield citations_event(_citations(prompt.cited))
        parts: list[str] = []
        try:
            async for piece in deltas:
                parts.append(piece)
                yield delta_event(piece)
        except Exception as exc:  # the provider died mid-answer: void what was sent, answer extractively
            provider.breaker.record_failure()
            metrics.ERRORS.labels("llm").inc()
            log.warning("LLM stream from %s broke off, answering extractively: %s", provider.name, exc)
            yield StreamEvent("reset", {"reason": "llm_failed"})
            for event in deltas_of(await self._extractive(query, found)):
                yield event
            yield self._done(started, cached=False, degraded=True)
            return
        provider.breaker.record_success()
        if slot:
            answer = keep_valid_citations("".join(parts), len(prompt.cited))
            await self.cache.put(
                slot, QueryResponse(answer=answer, citations=_citations(prompt.cited), cached=False, degraded=False)
            )
        yield self._done(started, cached=False, degraded=False)

    async def _extractive_stream(
        self, query: str, found: Retrieved, started: float, *, degraded: bool, slot: CacheSlot | None = None
    ) -> AsyncIterator[StreamEvent]:
        response = QueryResponse(
            answer=await self._extractive(query, found),
            citations=_citations(found.hits),
            cached=False,
            degraded=degraded,
        )
        if slot and not degraded:
            await self.cache.put(slot, response)
        async for event in self._replay(response, started, cached=False):
            yield event

    async def _replay(self, response: QueryResponse, started: float, *, cached: bool) -> AsyncIterator[StreamEvent]:
        yield citations_event(response.citations)
        for event in deltas_of(response.answer):
            yield event
        yield self._done(started, cached=cached, degraded=response.degraded)

    def _done(self, started: float, *, cached: bool, degraded: bool) -> StreamEvent:
        metrics.QUERIES.labels(str(cached).lower(), str(degraded).lower()).inc()
        metrics.QUERY_SECONDS.observe(time.perf_counter() - started)
        return done_event(cached=cached, degraded=degraded, took_ms=_ms(started))

    # --- shared steps -----------------------------------------------------------------------------------------

    async def retrieve(
        self, query: str, top_k: int, tenant: str, where: MetadataWhere | None = None, collection: str | None = None
    ) -> Retrieved:
        """The query's vector and the top_k passages of `tenant` (matching `where`) closest to it.

        `collection`: the serving collection this query's cache key names (default: whatever the alias resolves to).
        """
        started = time.perf_counter()
        vector = (await self.embedder.encode_async([query], check_length=False))[0]
        hybrid = self.settings.retrieval == "hybrid"
        search = SearchQuery(where, collection or None, query if hybrid else None, self.settings.rrf_k)
        hits = await self.retriever.search(vector.tolist(), top_k, tenant, search)
        metrics.RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
        return Retrieved(vector, hits)

    async def _lookup(
        self,
        tenant: str,
        query: str,
        top_k: int,
        collection: str,
        where: MetadataWhere | None = None,
        *,
        compose: bool = True,
    ) -> tuple[CacheSlot | None, QueryResponse | None]:
        """The query's cache slot and cached answer; (None, None) with the cache off or Redis down."""
        if not self.cache.enabled:
            return None, None
        mode = ("llm" if self.llm else "extractive") if compose else "retrieve"
        try:
            shape = f"top_k={top_k}\x00mode={mode}\x00retrieval={self.settings.retrieval}"
            params = f"{shape}\x00collection={collection}\x00where={where or ''}"
            return await self.cache.lookup(tenant, query, params)
        except TransientError as exc:
            log.warning("query cache skipped: %s", exc)
            return None, None

    async def _last_good(self, slot: CacheSlot | None) -> QueryResponse | None:
        """While search is down: the latest cached answer to this query, marked degraded."""
        stale = await self.cache.last_good(slot) if slot else None
        if stale is None:
            return None
        log.warning("vector search down: serving the last cached answer")
        return stale.model_copy(update={"cached": True, "degraded": True})

    async def _extractive(self, query: str, found: Retrieved) -> str:
        def semantic(sentences: list[str]) -> list[float]:
            # Cosine similarity of each sentence to the question (vectors are unit length).
            return (self.embedder.encode(sentences, check_length=False) @ found.vector).tolist()

        passages = self.settings.answer_passages
        return await self.embedder.on_model_thread(
            lambda: extractive_answer(query, found.hits, passages, scorer=semantic)
        )

    def _served(self, response: QueryResponse, started: float, *, cached: bool) -> QueryResponse:
        metrics.QUERIES.labels(str(cached).lower(), str(response.degraded).lower()).inc()
        metrics.QUERY_SECONDS.observe(time.perf_counter() - started)
        return response.model_copy(update={"cached": cached, "took_ms": _ms(started)})


def _citations(hits: list[ChunkHit]) -> list[Citation]:
    return Citation.ranked(hits)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
