"""Every dependency a route may ask for, defined once: `XDep = Annotated[X, Depends(get_x)]`, and the callers
`Reader` and `Writer`. The objects are opened in the app's lifespan and kept at app.state.ragbus (an ApiState).

Every dependency is `async def`, even one that only reads app.state: FastAPI runs a plain `def` dependency in
its thread pool, and that hop cost more than the rest of a cached answer's work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis

from query_api.feedback import FeedbackStore
from query_api.rate_limit import RedisRateLimiter
from query_api.security.authenticator import Authenticator
from query_api.security.errors import Forbidden
from query_api.security.principal import Principal, Scope
from query_api.service import QueryService
from ragbus.document_publisher import DocumentPublisher
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings


@dataclass(frozen=True)
class ApiState:
    """Everything the lifespan opened."""

    settings: Settings
    store: MilvusChunkStore
    redis: Redis
    service: QueryService
    authenticator: Authenticator
    limiter: RedisRateLimiter
    feedback: FeedbackStore
    publisher: DocumentPublisher


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.ragbus
    return state


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return _state(request).settings


async def get_store(request: Request) -> MilvusChunkStore:
    """The Milvus connection (readiness; queries go through the service's replicas)."""
    return _state(request).store


async def get_redis(request: Request) -> Redis:
    """The Redis client."""
    return _state(request).redis


async def get_service(request: Request) -> QueryService:
    """The answer pipeline."""
    return _state(request).service


async def get_feedback(request: Request) -> FeedbackStore:
    """Where votes on answers are kept."""
    return _state(request).feedback


async def get_publisher(request: Request) -> DocumentPublisher:
    """Publishes document events to Kafka."""
    return _state(request).publisher


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[MilvusChunkStore, Depends(get_store)]
RedisDep = Annotated[Redis, Depends(get_redis)]
ServiceDep = Annotated[QueryService, Depends(get_service)]
FeedbackDep = Annotated[FeedbackStore, Depends(get_feedback)]
PublisherDep = Annotated[DocumentPublisher, Depends(get_publisher)]

# auto_error=False: a missing credential is our own JSON 401, not FastAPI's 403; both still show in /docs.
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (`ragbus api-key create`).")
_bearer = HTTPBearer(auto_error=False, description="A JWT (HS256 or RS256) with `exp` and a tenant claim.")


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that yields the caller when it may use `scope`: authenticate, rate-limit, check the scope."""

    async def caller(
        request: Request,
        api_key: Annotated[str | None, Security(_api_key)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        state = _state(request)
        principal = state.authenticator.authenticate(api_key, bearer.credentials if bearer else None)
        if principal.limited:
            await state.limiter.check(principal.tenant, principal.subject)
        if not principal.allows(scope):
            raise Forbidden(f"this credential lacks the {scope.value!r} scope")
        return principal

    return caller


Reader = Annotated[Principal, Depends(require(Scope.READ))]
Writer = Annotated[Principal, Depends(require(Scope.WRITE))]
