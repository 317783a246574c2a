"""Typed route dependencies: `Reader` and `Writer` authenticate, rate-limit and check the scope, in that order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from query_api.rate_limit import RedisRateLimiter
from query_api.security.authenticator import Authenticator
from query_api.security.errors import Forbidden
from query_api.security.principal import Principal, Scope


@dataclass(frozen=True)
class SecurityState:
    """Opened in the lifespan, at app.state.security."""

    authenticator: Authenticator
    limiter: RedisRateLimiter


# auto_error=False: a missing credential is our own JSON 401, not FastAPI's 403; both still show in /docs.
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (`ragbus api-key create`).")
_bearer = HTTPBearer(auto_error=False, description="A JWT (HS256 or RS256) with `exp` and a tenant claim.")


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that yields the caller when it may use `scope`."""

    async def caller(
        request: Request,
        api_key: Annotated[str | None, Security(_api_key)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        security: SecurityState = request.app.state.security
        principal = security.authenticator.authenticate(api_key, bearer.credentials if bearer else None)
        if principal.limited:
            await security.limiter.check(principal.tenant, principal.subject)
        if not principal.allows(scope):
            raise Forbidden(f"this credential lacks the {scope.value!r} scope")
        return principal

    return caller


Reader = Annotated[Principal, Depends(require(Scope.READ))]
Writer = Annotated[Principal, Depends(require(Scope.WRITE))]
