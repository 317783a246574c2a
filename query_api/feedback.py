"""Feedback on answers, kept in Redis: thumbs up/down and the relevant documents, as running ratios."""

from __future__ import annotations

import logging
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from query_api import metrics
from query_api.errors import Conflict, NotFound
from ragbus.errors import TransientError
from ragbus.redis_store import REDIS_DOWN
from schemas.fields import DocId

log = logging.getLogger(__name__)
PRECISION_K = 5


class FeedbackRequest(BaseModel):
    """A vote on one answer, named by the X-Request-ID its query returned."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{1,128}$", description="X-Request-ID of the query response.", examples=["3f2a..."]
    )
    vote: Literal["up", "down"] = Field(description="Thumbs up or down.")
    relevant_doc_ids: list[DocId] | None = Field(
        None, max_length=100, description="Documents that answer the question; enables precision@5."
    )


class FeedbackTotals(BaseModel):
    """The running ratios after this feedback."""

    thumbs_up_rate: float
    precision_at_5: float | None = Field(description="Mean precision@5 so far; null until a vote named documents.")
    precision: float | None = Field(description="Precision@5 of this query, when relevant_doc_ids were given.")


def precision_at_k(cited: list[str], relevant: set[str], k: int = PRECISION_K) -> float:
    """Share of the first k cited passages that come from a relevant document (0 when nothing was cited)."""
    top = cited[:k]
    return sum(doc in relevant for doc in top) / len(top) if top else 0.0


class FeedbackStore:
    """What each answered query cited (so feedback can score it), and each tenant's totals, shared by every API
    process. Every key names its tenant: one tenant can neither read nor move another's figures."""

    def __init__(self, redis: Redis, namespace: str, ttl_s: int) -> None:
        self.redis, self.ns, self.ttl_s = redis, namespace, ttl_s

    def totals_key(self, tenant: str) -> str:
        """The tenant's running totals (a hash: up, down, precision_sum, precision_n)."""
        return f"{self.ns}:feedback:totals:{tenant}"

    def _query_key(self, tenant: str, request_id: str) -> str:
        # Per tenant: callers may choose their X-Request-ID, and one tenant's id must never reach another's record.
        return f"{self.ns}:feedback:query:{tenant}:{request_id}"

    async def remember(self, request_id: str, tenant: str, cited_doc_ids: list[str]) -> None:
        """Note what a query cited (best effort: without it, that query cannot receive feedback)."""
        record = orjson.dumps({"tenant": tenant, "cited": cited_doc_ids[:PRECISION_K]})
        try:
            await self.redis.set(self._query_key(tenant, request_id), record, ex=self.ttl_s)
        except REDIS_DOWN as exc:
            log.warning("feedback record of %s not stored: %s", request_id, exc)

    async def record(self, tenant: str, feedback: FeedbackRequest) -> FeedbackTotals:
        """Count one vote per query; NotFound for a query of another tenant or unknown, Conflict for a second vote."""
        key = self._query_key(tenant, feedback.request_id)
        try:
            raw = await self.redis.get(key)
            stored = orjson.loads(raw) if raw else None
            if stored is None or stored["tenant"] != tenant:
                raise NotFound(f"no answered query {feedback.request_id!r} for this tenant")
            # One vote per query, also across processes: the first SET NX wins.
            if not await self.redis.set(f"{key}:vote", feedback.vote, nx=True, ex=self.ttl_s):
                raise Conflict(f"query {feedback.request_id!r} already has feedback")
            precision = None
            totals_key = self.totals_key(tenant)
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(totals_key, feedback.vote, 1)
                if feedback.relevant_doc_ids is not None:
                    precision = precision_at_k(stored["cited"], set(feedback.relevant_doc_ids))
                    pipe.hincrbyfloat(totals_key, "precision_sum", precision)
                    pipe.hincrby(totals_key, "precision_n", 1)
                pipe.hgetall(totals_key)
                results = await pipe.execute()
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc
        totals = {k.decode(): float(v) for k, v in results[-1].items()}
        return self._publish(tenant, totals, precision, feedback.vote)

    @staticmethod
    def _publish(tenant: str, totals: dict[str, float], precision: float | None, vote: str) -> FeedbackTotals:
        votes = totals.get("up", 0.0) + totals.get("down", 0.0)
        up_rate = totals.get("up", 0.0) / votes if votes else 0.0
        n = totals.get("precision_n", 0.0)
        mean = totals.get("precision_sum", 0.0) / n if n else None
        metrics.FEEDBACK.labels(vote).inc()
        metrics.THUMBS_UP_RATE.labels(tenant).set(up_rate)
        if mean is not None:
            metrics.PRECISION_AT_5.labels(tenant).set(mean)
        return FeedbackTotals(thumbs_up_rate=up_rate, precision_at_5=mean, precision=precision)
