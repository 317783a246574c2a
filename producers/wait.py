"""Follow published documents until the index reflects them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ragbus.errors import TransientError
from ragbus.milvus_store import MilvusChunkStore


def pending_documents(store: MilvusChunkStore, expected: dict[tuple[str, str], int | None]) -> set[tuple[str, str]]:
    """Documents whose indexed state is not yet `expected` (a version, or None for deleted)."""
    pending: set[tuple[str, str]] = set()
    by_tenant: dict[str, list[str]] = {}
    for tenant, doc_id in expected:
        by_tenant.setdefault(tenant, []).append(doc_id)
    for tenant, doc_ids in by_tenant.items():
        for start in range(0, len(doc_ids), 500):
            part = doc_ids[start : start + 500]
            indexed = store.indexed_versions(tenant, part)
            for doc_id in part:
                want = expected[(tenant, doc_id)]
                have = indexed.get(doc_id)
                done = have is None if want is None else (have is not None and max(have) >= want)
                if not done:
                    pending.add((tenant, doc_id))
    return pending


async def wait_until_indexed(
    store: MilvusChunkStore,
    expected: dict[tuple[str, str], int | None],
    *,
    timeout_s: float,
    on_progress: Callable[[int, int], None] | None = None,
    poll_s: float = 0.5,
) -> set[tuple[str, str]]:
    """Poll until every document is indexed as expected or the timeout passes; returns what is still pending."""
    deadline = time.monotonic() + timeout_s
    remaining = dict(expected)
    while True:
        try:
            pending = await asyncio.to_thread(pending_documents, store, remaining)
        except TransientError:
            pending = set(remaining)
        remaining = {k: remaining[k] for k in pending}
        if on_progress:
            on_progress(len(expected) - len(remaining), len(expected))
        if not remaining or time.monotonic() >= deadline:
            return set(remaining)
        await asyncio.sleep(poll_s)
