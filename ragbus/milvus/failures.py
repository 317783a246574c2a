"""Milvus failures as RagbusErrors: data errors are permanent, everything else transient, refusals configuration.

Only errors caused by the data itself are permanent. Anything else (server down, restarting, a collection released
by a restart) is transient: the worker retries rather than lose the message.
"""

from __future__ import annotations

import re

from pymilvus import MilvusException
from pymilvus.exceptions import (
    DataNotMatchException,
    DataTypeNotMatchException,
    DataTypeNotSupportException,
    FieldTypeException,
    ParamError,
    PrimaryKeyException,
)

from ragbus.errors import ConfigError, PermanentError, TransientError

# Milvus error texts that mean the request's data is wrong (retrying cannot help).
DATA_ERRORS = (
    "exceeds max length",
    "exceeds max_length",
    "length exceeds",
    "exceeds the max length",
    "dimension mismatch",
    "dim mismatch",
    "cannot parse expression",
    "out of range",
    "type mismatch",
    "invalid parameter",
    "invalid input",
    "data type",
    "json field",
    "exceeds max size",
)
# pymilvus refuses rows against the collection's schema before sending them (an int64 field given 2**63, a string
# where a number belongs): the data is wrong, whatever the server's state.
_CLIENT_DATA_ERRORS = (
    DataNotMatchException,
    DataTypeNotMatchException,
    DataTypeNotSupportException,
    ParamError,
    PrimaryKeyException,
    FieldTypeException,
)
# Only a collection that does not exist: "field cite_page not exist" (an output field an older layout lacks) must
# never read as a missing collection, or a search would fall back to another collection through the alias.
MISSING_COLLECTION = re.compile(
    r"collection not found|can ?not find collection|can't find collection"
    r"|collection\W+[\w.\[\]=-]*\W*(?:does )?not exist",
    re.I,
)
_RELEASED = re.compile(r"[Cc]ollection '([^']+)'")


def _is_data_error(exc: MilvusException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in DATA_ERRORS)


def mapped_error(exc: Exception, uri: str) -> Exception:
    """`exc` as a PermanentError or TransientError; `exc` itself when it is no Milvus or connection failure."""
    if isinstance(exc, (*_CLIENT_DATA_ERRORS, ValueError, TypeError, OverflowError)):
        return PermanentError(f"Milvus refused the data: {exc}", code="milvus_rejected")
    if isinstance(exc, MilvusException):
        if _is_data_error(exc):
            return PermanentError(f"Milvus rejected the data: {exc}", code="milvus_rejected")
        return TransientError(f"Milvus at {uri} failed: {exc}")
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or type(exc).__module__.startswith("grpc"):
        return TransientError(f"Milvus at {uri} unreachable: {exc}")
    return exc


def released(exc: Exception) -> bool:
    """Whether `exc` says a collection is released or not loaded (a restarted server keeps them so)."""
    if not isinstance(exc, MilvusException) or _is_data_error(exc):
        return False
    text = str(exc).lower()
    return "released" in text or "not loaded" in text


def released_collection(exc: Exception) -> str | None:
    """The collection a `released` failure names, if it names one."""
    named = _RELEASED.search(str(exc))
    return named.group(1) if named else None


def security_refusal(exc: BaseException, uri: str) -> ConfigError | None:
    """A refused login or an untrusted server certificate: a ConfigError naming the settings, never the secret."""
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(seen) < 8 and all(cause is not s for s in seen):
        seen.append(cause)
        status = getattr(cause, "code", None)
        grpc_error = type(cause).__module__.startswith("grpc") and callable(status)
        name = getattr(status(), "name", "") if grpc_error and status is not None else ""
        details = str(cause)
        if name in {"UNAUTHENTICATED", "PERMISSION_DENIED"}:
            return ConfigError(
                f"Milvus at {uri} refused the credentials ({name.lower()}); check RAGBUS_MILVUS_TOKEN or "
                "RAGBUS_MILVUS_TOKEN_FILE (user:password or an API token) and that user's privileges"
            )
        if "CERTIFICATE_VERIFY_FAILED" in details or "Tls handshake failed" in details:
            return ConfigError(
                f"TLS handshake with Milvus at {uri} failed (CERTIFICATE_VERIFY_FAILED); check "
                "RAGBUS_MILVUS_SERVER_PEM_PATH (the CA or certificate to trust) and RAGBUS_MILVUS_SERVER_NAME"
            )
        cause = cause.__cause__ or cause.__context__
    return None
