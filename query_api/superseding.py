"""The version a REST write without one takes, so that it supersedes whatever version the index holds.

Versions decide which change of a document wins (the indexer never applies an older one over a newer), and a
caller may have published a version ahead of the clock (up to a day: schemas.bounds), or an older build may have
indexed one further ahead still. A REST delete, or a replace without a version, must win all the same: it takes
now on the version clock, or the indexed version when that is ahead (an equal version re-applies, later wins).
"""

from __future__ import annotations

import asyncio
import logging

from ragbus.errors import RagbusError
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from schemas.bounds import version_clock_now

log = logging.getLogger(__name__)


def _indexed_versions(store: MilvusChunkStore, tenant: str, doc_ids: list[str]) -> dict[str, int]:
    target = store.alias_target()
    if target is None:
        return {}
    states = MilvusDocumentStates(store).get(target, [(tenant, d) for d in doc_ids])
    return {doc_id: state.version for (_, doc_id), state in states.items()}


async def superseding_versions(store: MilvusChunkStore, tenant: str, doc_ids: list[str]) -> dict[str, int]:
    """For each doc_id: now in microseconds, or the version the served collection holds if that is ahead."""
    now = version_clock_now()
    try:
        indexed = await asyncio.to_thread(_indexed_versions, store, tenant, doc_ids)
    except RagbusError as exc:
        # Milvus unreachable: the write still goes out with now (it wins unless a version ahead is indexed).
        log.warning("indexed versions unknown (%s): publishing with the current time as version", exc)
        indexed = {}
    return {doc_id: max(now, indexed.get(doc_id, 0)) for doc_id in doc_ids}
