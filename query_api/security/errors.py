"""Errors a caller caused, each with an HTTP status and a stable code (mapped in query_api.errors)."""

from __future__ import annotations

from ragbus.errors import RagbusError


class ClientError(RagbusError):
    """A request refused because of the caller; `status` is the HTTP status, `headers` go with it."""

    code = "client_error"
    status = 400
    metric_type = "client"

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers."""
        return {}


class InvalidRequest(ClientError):
    """A request that fails a check the body's schema cannot express."""

    code = "invalid_request"
    status = 422
    metric_type = "validation"


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


class RateLimited(ClientError):
    """Too many requests with one credential in the current window."""

    code = "rate_limited"
    status = 429
    metric_type = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)

    @property
    def headers(self) -> dict[str, str]:
        """When the caller may try again."""
        return {"Retry-After": str(self.retry_after_s)}


class BodyTooLarge(ClientError):
    """A request body over RAGBUS_API_MAX_BODY_BYTES, refused before it is parsed."""

    code = "body_too_large"
    status = 413
    metric_type = "too_large"


class NotFound(ClientError):
    """Something the caller's tenant does not have (another tenant's things are 'not found' too)."""

    code = "not_found"
    status = 404
    metric_type = "not_found"


class Conflict(ClientError):
    """The request repeats something that may happen only once."""

    code = "conflict"
    status = 409
    metric_type = "conflict"
