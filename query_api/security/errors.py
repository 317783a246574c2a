"""Refusals about credentials and scopes (ClientErrors, mapped to JSON in query_api.errors)."""

from __future__ import annotations

from query_api.errors import ClientError


class Unauthenticated(ClientError):
    """No credential, or one that is unknown, malformed or expired."""

    code = "unauthorized"
    status = 401
    metric_type = "unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        """RFC 6750: tell the caller how to authenticate."""
        return {"WWW-Authenticate": 'Bearer realm="ragbus"'}


class Forbidden(ClientError):
    """A valid credential without the scope the operation needs."""

    code = "forbidden"
    status = 403
    metric_type = "forbidden"
