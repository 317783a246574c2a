"""MilvusConnection: one client of one Milvus server, each call's failures mapped to RagbusErrors."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pymilvus import MilvusClient, MilvusException
from pymilvus.client import ts_utils

from ragbus.errors import TransientError
from ragbus.milvus.failures import mapped_error, released, released_collection, security_refusal
from ragbus.settings import MilvusSettings

log = logging.getLogger(__name__)
# pymilvus logs every failed RPC with a traceback, including the expected ones (an alias not created yet);
# this package turns each failure into a RagbusError that is logged where it is handled.
logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
T = TypeVar("T")

# pymilvus pings every 10 s even when idle; servers with gRPC's default ping policy (milvus-lite) answer that with
# GOAWAY "too many pings" and the next call fails. Ping only during calls, and keep each client's connection its own.
_GRPC_OPTIONS = {
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_permit_without_calls": 0,
    "grpc.use_local_subchannel_pool": 1,
}


def milvus_tls_options(settings: MilvusSettings) -> dict[str, Any]:
    """pymilvus TLS options from RAGBUS_MILVUS_SECURE / SERVER_PEM_PATH / SERVER_NAME (an https URI implies TLS)."""
    options: dict[str, Any] = {"secure": True} if settings.secure else {}
    if settings.server_pem_path is not None:
        options["server_pem_path"] = str(settings.server_pem_path)
    if settings.server_name:
        options["server_name"] = settings.server_name
    return options


class MilvusConnection:
    """The client, the alias it serves, and collection descriptions asked once. Blocking, like every call here."""

    def __init__(self, settings: MilvusSettings, uri: str) -> None:
        self.settings = settings
        self.uri = uri
        self.alias = settings.alias
        self._described: dict[str, dict[str, Any]] = {}
        self._single_oracle: bool | None = None
        token = settings.token.get_secret_value() if settings.token else ""
        self.client: MilvusClient = self.call(
            lambda: MilvusClient(
                uri=uri,
                token=token,
                timeout=settings.timeout_s,
                grpc_options=_GRPC_OPTIONS,
                # pymilvus 3 shares one connection per address|token, whatever the TLS options: a store with
                # another CA or no TLS would silently ride an earlier store's channel. Each store owns its own.
                dedicated=True,
                **milvus_tls_options(settings),
            )
        )

    def close(self) -> None:
        """Close the connection."""
        self.client.close()

    def call(self, fn: Callable[[], T]) -> T:
        """Run one Milvus call, mapping failures to TransientError (retry) or PermanentError (dead-letter).

        A refused login or certificate is a ConfigError; a collection released by a restart is loaded again, so
        the retry finds it served.
        """
        try:
            return fn()
        except Exception as exc:
            if refused := security_refusal(exc, self.uri):
                raise refused from None  # the chain can carry the URI's user-info; the message names the fix
            if released(exc):
                self._reload(exc)
            mapped = mapped_error(exc, self.uri)
            if mapped is exc:
                raise
            raise mapped from exc

    def _reload(self, exc: Exception) -> None:
        # A restarted server keeps collections released until someone loads them.
        with contextlib.suppress(Exception):
            target = released_collection(exc) or self.alias_target()
            if target:
                self.load(target)

    def load(self, collection: str) -> None:
        """Load `collection` with RAGBUS_MILVUS_REPLICA_NUMBER in-memory replicas, or one where the server can't."""
        replicas = self.settings.replica_number
        if replicas > 1:
            try:
                self.client.load_collection(collection, replica_number=replicas)
                return
            except MilvusException as exc:
                # A standalone server (one query node) refuses more replicas than nodes: serve with one.
                log.warning("RAGBUS_MILVUS_REPLICA_NUMBER=%d not applied to %s: %s", replicas, collection, exc)
        self.client.load_collection(collection)

    def serves(self, collection: str) -> bool:
        """Whether the server answers and has `collection` loaded (a cheap probe; TransientError if unreachable).

        A collection still loading after a restart fails writes without the data being at fault."""
        state = self.call(lambda: self.client.get_load_state(collection))
        return getattr(state.get("state"), "name", "") == "Loaded"

    def alias_target(self) -> str | None:
        """Collection the alias points at, or None when the alias does not exist yet."""
        try:
            info = self.client.describe_alias(self.alias)
        except MilvusException as exc:
            text = str(exc).lower()
            if "not exist" in text or "not found" in text:
                return None
            raise TransientError(f"Milvus at {self.uri} failed: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith("grpc") or isinstance(exc, OSError):
                raise TransientError(f"Milvus at {self.uri} unreachable: {exc}") from exc
            raise
        return str(info["collection_name"])

    def last_write_ts(self, collections: Iterable[str]) -> int:
        """The engine's timestamp of this client's latest write to any of `collections`; 0 when it gave none.

        pymilvus records each mutation's timestamp per address, database and collection name (its own Session
        consistency reads it). The real engine stamps upserts; milvus-lite stamps nothing, and the real engine
        2.3 stamps no delete: a delete is covered by a later upsert's stamp, also one of another collection, since
        before Milvus 2.6 one oracle stamps every collection. From 2.6 on, stamps are ordered per channel only
        (its streaming design), so there this gives 0 until that is shown safe on the engine: searches then read
        at RAGBUS_MILVUS_CONSISTENCY_LEVEL. 0 too where pymilvus keeps its record otherwise (older releases).
        """
        if not self._one_timestamp_oracle():
            return 0
        address = self.client._get_connection().server_address
        try:
            stamps = [
                ts_utils.get_collection_ts(name, address, db) or 0 for name in collections for db in ("", "default")
            ]
        except TypeError:  # pymilvus before 2.6.7 keys its record by collection name alone
            return 0
        return max(stamps, default=0)

    def _one_timestamp_oracle(self) -> bool:
        """Whether the server stamps every collection's writes from one oracle (Milvus before 2.6), asked once."""
        if self._single_oracle is None:
            try:
                version = str(self.client.get_server_version())
            except Exception:  # an unknown server is treated as the newer kind
                version = ""
            found = re.match(r"v?(\d+)\.(\d+)", version)
            self._single_oracle = found is not None and (int(found[1]), int(found[2])) < (2, 6)
        return self._single_oracle

    def description(self, collection: str) -> dict[str, Any]:
        """`describe_collection` of `collection`, asked once per name (an alias is asked every time: it can move)."""
        known = self._described.get(collection)
        if known is None:
            known = self.call(lambda: self.client.describe_collection(collection))
            if collection != self.alias:
                self._described[collection] = known
        return known
