"""Which retrieval a Milvus deployment serves, hybrid (BM25 + dense) or dense-only, and why: read, never assumed.

A deployment serves hybrid when the query API asks for it (RAGBUS_API_RETRIEVAL=hybrid, the default) and the
collection behind the alias has the BM25 field, which the indexer gives a new collection only where the server did
BM25 at the time (`bm25.supports_bm25`: Milvus 2.5+, milvus-lite 3.2). A Milvus 2.4 deployment used to serve
dense-only without saying so; the query API now logs each deployment's mode at start-up and `ragbus status` and
GET /v1/status show it. Reading it costs a describe of the alias, of its collection and, when dense-only, the
server's version: no probe collection is created, so the status view may ask every few seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Literal

from ragbus.errors import RagbusError
from ragbus.milvus.connection import MilvusConnection
from ragbus.milvus.schema import has_bm25
from ragbus.settings import MilvusSettings

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense-only", "unknown"]
Retrieval = Literal["hybrid", "dense"]
# The first Milvus release with the BM25 function (full-text search).
BM25_SINCE = (2, 5)


@dataclass(frozen=True)
class RetrievalMode:
    """What one deployment serves; `reason` says why in words an operator can act on."""

    uri: str
    mode: Mode
    reason: str

    def render(self) -> str:
        """One line: `hybrid (collection ... has the BM25 field)`."""
        return f"{self.mode} ({self.reason})"


def predates_bm25(version: str) -> bool:
    """Whether a server version names a Milvus release without BM25: v2.4.17 yes; v2.6.16, milvus_lite-3.2.2 no."""
    found = re.fullmatch(r"v?(\d+)\.(\d+)\b.*", version.strip())
    return found is not None and (int(found[1]), int(found[2])) < BM25_SINCE


def serving_mode(connection: MilvusConnection, retrieval: Retrieval) -> RetrievalMode:
    """The mode the query API serves from this deployment with RAGBUS_API_RETRIEVAL=`retrieval`. Blocking."""
    uri = connection.uri
    if retrieval == "dense":
        return RetrievalMode(uri, "dense-only", "RAGBUS_API_RETRIEVAL=dense")
    target = connection.alias_target()
    if target is None:
        return RetrievalMode(
            uri, "unknown", f"no collection behind {connection.alias} yet: the indexer makes it hybrid where the "
            "server does BM25",
        )  # fmt: skip
    if has_bm25(connection, target):
        return RetrievalMode(uri, "hybrid", f"collection {target} has the BM25 field")
    version = str(connection.call(connection.client.get_server_version))
    if predates_bm25(version):
        why = f"Milvus {version} has no BM25 full-text search: upgrade to 2.5 or later (2.6 recommended), then run "
        why += "`ragbus reindex`"
    else:
        why = "it was created with RAGBUS_MILVUS_BM25=off or on an older server; `ragbus reindex` on this Milvus "
        why += f"({version}) makes a hybrid one"
    return RetrievalMode(uri, "dense-only", f"collection {target} has no BM25 field: {why}")


def _read(settings: MilvusSettings, uri: str, retrieval: Retrieval) -> RetrievalMode:
    try:
        connection = MilvusConnection(settings, uri)
        try:
            return serving_mode(connection, retrieval)
        finally:
            connection.close()
    except RagbusError as exc:
        return RetrievalMode(uri, "unknown", f"unavailable: {exc}")


async def read_retrieval_modes(settings: MilvusSettings, uris: list[str], retrieval: Retrieval) -> list[RetrievalMode]:
    """Each deployment's mode, read at once (one that cannot be read is `unknown`, with the error)."""
    return list(await asyncio.gather(*(asyncio.to_thread(_read, settings, uri, retrieval) for uri in uris)))


def log_retrieval_modes(modes: list[RetrievalMode]) -> None:
    """One line per deployment; a warning for any that does not serve hybrid."""
    for mode in modes:
        level = logging.INFO if mode.mode == "hybrid" else logging.WARNING
        log.log(level, "Milvus at %s serves %s retrieval: %s", mode.uri, mode.mode, mode.reason)
