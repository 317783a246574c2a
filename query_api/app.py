"""The query API: `create_app(settings)`; clients open and close in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from query_api.answering import open_answering
from query_api.body_limit import BodyLimitMiddleware
from query_api.deps import ApiState
from query_api.errors import install_error_handlers
from query_api.feedback import FeedbackStore
from query_api.question_encoder import load_question_encoder, question_embedding
from query_api.rate_limit import RedisRateLimiter
from query_api.request_ids import install_request_ids
from query_api.routes import document_uploads, documents, feedback, health, query, status
from query_api.routes.metrics import install_metrics
from query_api.routes.web import install_web_page
from query_api.security.authenticator import Authenticator
from query_api.server_timing import install_server_timing
from query_api.service import QueryService
from ragbus import __version__
from ragbus.document_publisher import DocumentPublisher
from ragbus.evaluation import PASSAGES
from ragbus.heap import freeze_startup_objects
from ragbus.milvus.retrieval_mode import log_retrieval_modes, read_retrieval_modes
from ragbus.milvus.store import MilvusChunkStore
from ragbus.redis_store import open_redis
from ragbus.scheduled_evaluation import AsyncRanker, scheduled_evaluation
from ragbus.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The FastAPI application."""
    settings = settings or load_settings()
    authenticator = Authenticator.from_settings(settings.api_security)  # fails fast: auth on, no credentials
    question_embedding(settings)  # fails fast: float questions against an int8 index

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything opened here is closed in reverse order, also when a later start-up step fails.
        async with AsyncExitStack() as opened:
            embedder = await asyncio.to_thread(load_question_encoder, settings)
            opened.callback(embedder.close)
            store = await asyncio.to_thread(MilvusChunkStore, settings.milvus, settings.milvus_uri)
            opened.callback(store.close)
            # Which retrieval each deployment serves, and why: a dense-only one is a warning, never silent.
            milvus, uris = settings.milvus, settings.milvus_read_uris
            log_retrieval_modes(await read_retrieval_modes(milvus, uris, settings.api.retrieval))
            redis = open_redis(settings.redis)
            opened.push_async_callback(redis.aclose)
            service = await opened.enter_async_context(open_answering(settings, embedder, redis))
            publisher = DocumentPublisher(settings)
            opened.push_async_callback(publisher.close)
            security, namespace = settings.api_security, settings.redis.namespace
            app.state.ragbus = ApiState(
                settings=settings,
                store=store,
                redis=redis,
                service=service,
                authenticator=authenticator,
                limiter=RedisRateLimiter(redis, namespace, security.rate_limit, security.rate_window_s),
                feedback=FeedbackStore(redis, namespace, security.feedback_ttl_s),
                publisher=publisher,
            )
            await opened.enter_async_context(scheduled_evaluation(settings.evaluation, _ranker(service, settings)))
            freeze_startup_objects()
            yield

    app = FastAPI(
        title="ragbus query API",
        version=__version__,
        description="Grounded answers with citations from documents indexed through Kafka.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_security.max_body_bytes)
    install_request_ids(app)
    install_server_timing(app)
    app.include_router(health.router)
    app.include_router(query.router)
    app.include_router(document_uploads.router)  # before the JSON route of the same path
    app.include_router(documents.router)
    app.include_router(feedback.router)
    app.include_router(status.router)
    install_metrics(app)
    install_web_page(app)
    return app


def _ranker(service: QueryService, settings: Settings) -> AsyncRanker:
    """Documents as the API ranks them for the scheduled evaluation (the serving collection, no answer, no cache)."""

    async def rank(query: str) -> list[str]:
        found = await service.retrieve(query, PASSAGES, settings.evaluation.tenant)
        return list(dict.fromkeys(hit.doc_id for hit in found.hits))

    return rank
