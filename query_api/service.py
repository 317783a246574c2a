"""QueryService: one answer pipeline, for whole and streamed answers alike.

cache → single flight (whole answers) → embed → search replicas (or the last good answer while search is down)
→ compose (LLM, or extractive) → cache. The pipeline yields the answer in parts (query_api.answer_parts): a whole
answer keeps the last part, a streamed one sends every part as it comes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from query_api import metrics
from query_api.answer_parts import Answered, AnswerPart, finished, whole_answer
from query_api.batching import Batcher
from query_api.cache import CacheSlot, QueryCache
from query_api.composer import AnswerComposer
from query_api.generation import LLMAnswerer
from query_api.models import QueryResponse
from query_api.question_calls import QuestionCalls
from query_api.retrieval import ReplicatedRetriever, Retrieved, SearchQuery, SearchUnavailable
from query_api.server_timing import timed
from query_api.single_flight import SingleFlight
from query_api.streaming import StreamEvent, answer_events
from ragbus.embedding import SentenceEmbedder
from ragbus.errors import TransientError
from ragbus.milvus.filters import MetadataWhere
from ragbus.settings import ApiSettings
from ragbus.write_marks import WriteMarks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    """A question and everything that shapes its answer (all of it is part of the cache key)."""

    query: str
    top_k: int
    tenant: str
    where: MetadataWhere | None
    compose: bool  # False: retrieval only, the passages without an answer


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
        marks: WriteMarks | None = None,
    ) -> None:
        self.settings, self.embedder, self.retriever = settings, embedder, retriever
        self.cache, self.flights, self.llm, self.marks = cache, flights, llm, marks
        self.composer = AnswerComposer(settings, embedder, llm)
        # Questions arriving while the model encodes others are encoded together next (query_api.batching), and so
        # reach the search together; query_api.question_calls says in how many model calls.
        self.question_calls = QuestionCalls(embedder, settings.query_encode_calls)
        self.questions = Batcher[None, str, np.ndarray](self._encode, settings.batch_max, "question-batch")

    async def _encode(self, _key: None, questions: list[str]) -> list[np.ndarray]:
        return await self.question_calls.encode(questions)

    async def aclose(self) -> None:
        """Stop batching (the clients are closed by whoever opened them)."""
        await self.questions.aclose()
        await asyncio.to_thread(self.question_calls.close)

    async def answer(
        self,
        query: str,
        top_k: int,
        tenant: str = "default",
        where: MetadataWhere | None = None,
        *,
        compose: bool = True,
        fresh: bool = False,
    ) -> QueryResponse:
        """A grounded answer with citations; from the cache while no change of the tenant's documents stales it.

        `where`: metadata filter (query_api.metadata_filter), part of the cache key.
        `compose`: False for retrieval only: the passages as citations and an empty answer.
        `fresh`: computed now (read-your-writes, see `_answer_parts`).
        """
        started = time.perf_counter()
        parts = await self._answer_parts(Question(query, top_k, tenant, where, compose), live=False, fresh=fresh)
        return self._finished(await whole_answer(parts), started)

    async def open_stream(
        self,
        query: str,
        top_k: int,
        tenant: str = "default",
        where: MetadataWhere | None = None,
        *,
        fresh: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        """The answer as events. Retrieval happens here, so a failure is an HTTP error, not a broken stream."""
        started = time.perf_counter()
        parts = await self._answer_parts(Question(query, top_k, tenant, where, compose=True), live=True, fresh=fresh)
        return answer_events(parts, lambda response: self._finished(response, started))

    async def _answer_parts(self, question: Question, *, live: bool, fresh: bool = False) -> AsyncIterator[AnswerPart]:
        """The answer pipeline: the cached answer, else one computed now. Retrieval is over when this returns.

        `live` (a streamed answer): the LLM's text comes as the model writes it, and the answer does not wait for
        another caller computing the same one (single flight hands over whole answers only).
        `fresh` (a query with min_versions, once the index holds them): never the cached answer, another caller's
        in flight, or the last good one, since the cache may apply a change a moment after the index shows it;
        the answer is still cached for later queries.
        """
        collection = await self.retriever.serving_collection()
        slot, hit = await self._lookup(question, collection)
        if hit and not fresh:
            return finished(hit.model_copy(update={"cached": True}))
        if live or slot is None or fresh:
            return await self._computed(question, collection, slot, live=live, stale_ok=not fresh)

        async def compute() -> QueryResponse:
            return await whole_answer(await self._computed(question, collection, slot, live=False))

        response, shared = await self.flights.run(
            slot.key, self.cache.keys.flight_lock(slot.key), compute, lambda: self.cache.get(slot)
        )
        return finished(response.model_copy(update={"cached": True}) if shared else response)

    async def _computed(
        self, question: Question, collection: str, slot: CacheSlot | None, *, live: bool, stale_ok: bool = True
    ) -> AsyncIterator[AnswerPart]:
        """Retrieval now, then the answer's parts, cached as the answer is done; the last good answer while search
        is down (if `stale_ok`)."""
        try:
            found = await self.retrieve(
                question.query, question.top_k, question.tenant, question.where, collection, at_marks=stale_ok
            )
        except SearchUnavailable:
            if stale_ok and (stale := await self._last_good(slot)):
                return finished(stale)
            raise
        if not question.compose:
            return self._cached(finished(self.composer.passages(found)), slot)
        return self._cached(self.composer.compose(question.query, found, live=live), slot)

    async def _cached(self, parts: AsyncIterator[AnswerPart], slot: CacheSlot | None) -> AsyncIterator[AnswerPart]:
        """The parts; the answer is cached before it is handed on (unless degraded: the next query tries again)."""
        async for part in parts:
            if slot and isinstance(part, Answered) and not part.response.degraded:
                await self.cache.put(slot, part.response)
            yield part

    async def retrieve(
        self,
        query: str,
        top_k: int,
        tenant: str,
        where: MetadataWhere | None = None,
        collection: str | None = None,
        *,
        at_marks: bool = True,
    ) -> Retrieved:
        """The query's vector and the top_k passages of `tenant` (matching `where`) closest to it.

        `collection`: the serving collection this query's cache key names (default: whatever the alias resolves to).
        `at_marks`: read at the indexer's write marks (ragbus.write_marks) where the API does; False: at
        RAGBUS_MILVUS_CONSISTENCY_LEVEL (a read-your-writes query, whose versions were seen by a read of its own).
        """
        started = time.perf_counter()
        marks = asyncio.ensure_future(self._written(collection)) if at_marks and collection else None
        try:
            with timed("encode"):
                vector = await self.questions.submit(None, query)
        except BaseException:
            if marks is not None:
                marks.cancel()
            raise
        with timed("marks"):
            written = await marks if marks is not None else {}
        hybrid = self.settings.retrieval == "hybrid"
        search = SearchQuery(where, collection or None, query if hybrid else None, self.settings.rrf_k, written)
        with timed("search"):
            hits = await self.retriever.search(vector.tolist(), top_k, tenant, search)
        metrics.RETRIEVAL_SECONDS.observe(time.perf_counter() - started)
        return Retrieved(vector, hits)

    async def _written(self, collection: str | None) -> dict[str, int]:
        """The write marks of `collection` on each replica (none without marks, a collection or Redis)."""
        if self.marks is None or not collection:
            return {}
        try:
            return await self.marks.read(collection, [replica.uri for replica in self.retriever.replicas])
        except TransientError as exc:
            log.warning("write marks unavailable, searching at RAGBUS_MILVUS_CONSISTENCY_LEVEL: %s", exc)
            return {}

    async def _lookup(self, question: Question, collection: str) -> tuple[CacheSlot | None, QueryResponse | None]:
        """The question's cache slot and cached answer; (None, None) with the cache off or Redis down."""
        if not self.cache.enabled:
            return None, None
        mode = ("llm" if self.llm else "extractive") if question.compose else "retrieve"
        try:
            shape = f"top_k={question.top_k}\x00mode={mode}\x00retrieval={self.settings.retrieval}"
            params = f"{shape}\x00collection={collection}\x00where={question.where or ''}"
            if self.embedder.settings.backend == "onnx-int8":  # other question vectors, other rankings
                params += "\x00questions=int8"
            with timed("cache"):
                return await self.cache.lookup(question.tenant, question.query, params)
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

    def _finished(self, response: QueryResponse, started: float) -> QueryResponse:
        """The answer as served: counted, and stamped with its time."""
        metrics.QUERIES.labels(str(response.cached).lower(), str(response.degraded).lower()).inc()
        metrics.QUERY_SECONDS.observe(time.perf_counter() - started)
        return response.model_copy(update={"took_ms": round((time.perf_counter() - started) * 1000, 2)})
