"""Read-your-writes: before a query with `min_versions` is answered, wait until the index holds those versions.

A step in front of the answering pipeline (whole and streamed answers alike): it only waits or refuses. The cache
part of the rule lives in QueryService (`fresh=True` skips reading cached and in-flight answers), because the
cache-invalidation consumer may apply a change a moment after the index shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

from query_api.errors import ClientError
from ragbus.document_follower import versions_behind
from ragbus.errors import TransientError
from ragbus.milvus.store import MilvusChunkStore

POLL_S = 0.2


class VersionsPending(ClientError):
    """The index did not reach the asked versions within the wait; `pending` names them."""

    code = "versions_pending"
    status = 409
    metric_type = "versions_pending"

    def __init__(self, pending: Mapping[str, tuple[int, int | None]], waited_s: float) -> None:
        names = ", ".join(f"{d!r} (wanted {w}, indexed {h})" for d, (w, h) in sorted(pending.items())[:10])
        super().__init__(f"not indexed after {waited_s:.1f}s: {names}{' ...' if len(pending) > 10 else ''}")
        self.pending = dict(pending)

    @property
    def headers(self) -> dict[str, str]:
        """Asking again shortly is the remedy."""
        return {"Retry-After": "1"}

    @property
    def details(self) -> dict[str, object]:
        """Every pending document: the version asked for and the one indexed (null: none)."""
        return {"pending": {d: {"wanted": w, "indexed": h} for d, (w, h) in self.pending.items()}}


async def wait_for_versions(store: MilvusChunkStore, tenant: str, wanted: Mapping[str, int], timeout_s: float) -> None:
    """Return once `tenant`'s index holds at least `wanted` (doc_id -> version; a later delete counts);
    VersionsPending after `timeout_s`. A Milvus outage while waiting reads as still pending."""
    started = time.monotonic()
    behind: dict[str, int | None] = dict.fromkeys(wanted)
    while True:
        with contextlib.suppress(TransientError):
            behind = await asyncio.to_thread(versions_behind, store, tenant, {d: wanted[d] for d in behind})
        waited = time.monotonic() - started
        if not behind:
            return
        if waited >= timeout_s:
            raise VersionsPending({d: (wanted[d], h) for d, h in behind.items()}, waited)
        await asyncio.sleep(min(POLL_S, max(0.0, timeout_s - waited)))
