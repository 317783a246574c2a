"""The error responses each route documents in the OpenAPI document: every one it can give, with its JSON body
(ErrorResponse) and the headers that come with it, written once here so routes only name their codes."""

from __future__ import annotations

from typing import Any

from query_api.models import ErrorResponse

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_DESCRIPTIONS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("The body is not readable JSON (`invalid_body`), or a field breaks a rule of the data.", {}),
    401: (
        "No valid credential (`unauthorized`).",
        {"WWW-Authenticate": {"description": "How to authenticate.", "schema": {"type": "string"}}},
    ),
    403: ("The credential lacks the scope this route needs (`forbidden`).", {}),
    404: ("Nothing of the caller's tenant by that name (`not_found`).", {}),
    409: ("Already done once (`conflict`).", {}),
    413: ("The body is over RAGBUS_API_MAX_BODY_BYTES, or a document over its size limit.", {}),
    422: ("The request breaks the schema (`invalid_request`); the message names the fields.", {}),
    429: ("Over the credential's rate limit (`rate_limited`).", _RETRY_AFTER),
    500: ("A bug (`internal_error`): the body never holds details; the log has them under the X-Request-ID.", {}),
    503: ("A backing service is unavailable (`unavailable`, `search_unavailable`, ...): retry shortly.", _RETRY_AFTER),
}
# Every authenticated route can answer these, whatever it does.
AUTHENTICATED = (400, 401, 403, 413, 422, 429, 500, 503)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these status codes, each with the JSON error model."""
    documented: dict[int | str, dict[str, Any]] = {}
    for code in sorted(set(codes)):
        description, headers = _DESCRIPTIONS[code]
        documented[code] = {"model": ErrorResponse, "description": description}
        if headers:
            documented[code]["headers"] = headers
    return documented
