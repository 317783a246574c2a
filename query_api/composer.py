"""Writes the answer from the retrieved passages: the LLM's when it answers, else extractive.

The one place that decides an answer's text and its citations, for whole and streamed answers alike.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from query_api import metrics
from query_api.answer_parts import Answered, AnswerPart, Citations, Delta, Reset
from query_api.extractive import extractive_answer
from query_api.generation import LLMAnswerer, Prompt, keep_valid_citations
from query_api.models import Citation, QueryResponse
from query_api.providers import ProvidersFailed
from query_api.retrieval import Retrieved
from query_api.streaming import word_deltas
from ragbus.embedding import SentenceEmbedder
from ragbus.settings import ApiSettings

log = logging.getLogger(__name__)


class AnswerComposer:
    """Answers from passages; `llm` None: always extractive."""

    def __init__(self, settings: ApiSettings, embedder: SentenceEmbedder, llm: LLMAnswerer | None) -> None:
        self.settings, self.embedder, self.llm = settings, embedder, llm

    async def compose(self, query: str, found: Retrieved, *, live: bool) -> AsyncIterator[AnswerPart]:
        """The answer to `query` from `found`, in parts.

        `live`: the LLM's text as it writes it (a streamed answer); else the LLM answers whole. When every provider
        fails, or a live answer breaks off, the answer is extractive and degraded.
        """
        prompt = self._prompt(query, found)
        if self.llm is None or prompt is None:
            yield Answered(await self.extractive(query, found, degraded=False))
            return
        try:
            reply = await self.llm.reply(prompt, stream=live)
        except ProvidersFailed as exc:
            self._llm_failed("LLM failed, answering extractively: %s", exc)
            yield Answered(await self.extractive(query, found, degraded=True))
            return
        cited = Citation.ranked(prompt.cited)
        yield Citations(cited)
        pieces: list[str] = []
        try:
            async for piece in reply.deltas:
                pieces.append(piece)
                yield Delta(piece)
        except Exception as exc:  # the provider died mid-answer: void what was sent, answer extractively
            self._llm_failed("LLM stream from %s broke off, answering extractively: %s", reply.provider, exc)
            yield Reset("llm_failed")
            fallback = await self.extractive(query, found, degraded=True)
            for piece in word_deltas(fallback.answer):
                yield Delta(piece)
            yield Answered(fallback)
            return
        answer = keep_valid_citations("".join(pieces), len(prompt.cited))
        yield Answered(QueryResponse(answer=answer, citations=cited, cached=False, degraded=False))

    def passages(self, found: Retrieved) -> QueryResponse:
        """Retrieval only: the passages as citations and no answer."""
        return QueryResponse(answer="", citations=Citation.ranked(found.hits), cached=False, degraded=False)

    async def extractive(self, query: str, found: Retrieved, *, degraded: bool) -> QueryResponse:
        """The closest sentences of the best passages, each cited."""

        def semantic(sentences: list[str]) -> list[float]:
            # Cosine similarity of each sentence to the question (vectors are unit length).
            return (self.embedder.encode(sentences, check_length=False) @ found.vector).tolist()

        passages = self.settings.answer_passages
        answer = await self.embedder.on_model_thread(
            lambda: extractive_answer(query, found.hits, passages, scorer=semantic)
        )
        return QueryResponse(answer=answer, citations=Citation.ranked(found.hits), cached=False, degraded=degraded)

    def _prompt(self, query: str, found: Retrieved) -> Prompt | None:
        """The LLM's prompt, or None when there is no LLM or no passage fits its context."""
        if self.llm is None or not found.hits:
            return None
        prompt = self.llm.prompt(query, found.hits)
        return prompt if prompt.cited else None

    @staticmethod
    def _llm_failed(message: str, *args: object) -> None:
        metrics.ERRORS.labels("llm").inc()
        log.warning(message, *args)
