"""VersionApplier: puts each document's newest version into a chunk collection and removes its earlier chunks.

The document state is written before the chunks and records every chunk set (version, chunk count) that may be in
the collection, so a crash at any step leaves nothing the next application cannot find: it removes the recorded
sets other than its own by primary key (chunk ids are deterministic), then records only its own. A filtered delete
would scan the collection instead: on milvus-lite over 10,366 chunks, the indexer's whole write for a changed
document took 58 ms p50 and 156 ms p95 that way, and 24 and 43 ms by key (bench/results/stale-removal.json).
Collections whose states predate the record keep the filtered delete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ragbus import metrics
from ragbus.errors import InvalidMessage
from ragbus.milvus.document_states import PARTS_PENDING, DocumentState, MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from schemas.chunks import chunk_id_for
from schemas.documents import DocumentOp
from schemas.embeddings import EmbeddedDocument

log = logging.getLogger(__name__)
DocumentKey = tuple[str, str]  # (tenant, doc_id)


def stale_chunk_ids(tenant: str, doc_id: str, recorded: Mapping[int, int], keep: tuple[int, int] | None) -> list[str]:
    """Ids of the recorded chunks that are not among `keep` (version, chunk count); None keeps nothing."""
    ids = []
    for version, count in sorted(recorded.items()):
        if version == PARTS_PENDING:
            continue
        first = keep[1] if keep is not None and version == keep[0] else 0
        ids += [chunk_id_for(tenant, doc_id, version, index) for index in range(first, count)]
    return ids


def check_chunk_ids(doc: EmbeddedDocument) -> None:
    """InvalidMessage unless each chunk carries the id chunk_id_for gives its index: earlier chunks are removed by
    those ids, so a chunk with another id would never be removed. (The contract checks that indexes are in order.)"""
    for chunk in doc.chunks:
        expected = chunk_id_for(doc.tenant, doc.doc_id, doc.version, chunk.index)
        if chunk.chunk_id != expected:
            raise InvalidMessage(
                f"chunk {chunk.chunk_id!r} (index {chunk.index}) of {doc.doc_id!r} v{doc.version} should be "
                f"{expected!r}: chunk ids come from schemas.chunks.chunk_id_for"
            )


@dataclass(frozen=True)
class Applied:
    """What one application wrote: the engine's timestamp of its last write (0: none to rely on), and the documents
    whose version in parts is still arriving (not all of its chunks in the collection yet)."""

    written: int
    arriving: frozenset[DocumentKey]


class VersionApplier:
    """Applies document versions to a chunk collection: never an older one over a newer, never stray chunks."""

    def __init__(self, store: MilvusChunkStore, stage: str) -> None:
        self.store, self.stage = store, stage
        self.states = MilvusDocumentStates(store)

    def fresh(
        self, collection: str, docs: list[EmbeddedDocument]
    ) -> tuple[list[EmbeddedDocument], dict[DocumentKey, DocumentState]]:
        """The documents not older than what the collection holds, and the states the collection has for them.

        An event older than what was applied (producer retry, replay, out-of-order source) must not win, and a
        replayed upsert older than a delete must not resurrect the document. Equal versions re-apply (idempotent).
        """
        known = self.states.get(collection, [(d.tenant, d.doc_id) for d in docs])
        fresh = []
        for doc in docs:
            state = known.get((doc.tenant, doc.doc_id))
            if state is not None and doc.version < state.version:
                metrics.STALE_EVENTS.labels(self.stage).inc()
                log.info(
                    "ignoring %s v%d of %r: v%d%s already applied",
                    doc.op, doc.version, doc.doc_id, state.version, " (deleted)" if state.deleted else "",
                )  # fmt: skip
            else:
                fresh.append(doc)
        return fresh, known

    def apply(
        self, collection: str, docs: list[EmbeddedDocument], known: Mapping[DocumentKey, DocumentState]
    ) -> Applied:
        """Write these versions (one per document) and remove every other chunk of their documents.

        A version that travels in parts (schemas.chunks.ChunkedVersion) is complete once the collection holds all of
        its chunks, counted after each part's write: whatever order its parts arrive in, a part dead-lettered or
        replayed, only then are the earlier versions removed. Until then its state says it is still arriving.

        Returns the engine's timestamp of the last write (ragbus.write_marks), 0 where there is none to rely on:
        milvus-lite stamps nothing, and in the filtered layout the last write may be a delete, which the real
        engine 2.3 does not stamp. Here every delete is followed by the upsert of the settled states.
        """
        if not self.states.tracks_chunks(collection):
            self._apply_by_filter(collection, docs, known)
            return Applied(0, frozenset())
        intents, settled, stale = [], [], []
        parted: list[tuple[EmbeddedDocument, dict[int, int], DocumentState]] = []
        for doc in docs:
            before = known.get((doc.tenant, doc.doc_id))
            recorded = dict(before.chunks or {}) if before is not None else {}
            keep = (doc.version, doc.total_chunks) if doc.op is DocumentOp.UPSERT else None
            final = {doc.version: doc.total_chunks} if keep is not None and doc.chunks else {}
            # Until the removal is done, the state names both what was there and what is being written; a version
            # in parts also says that it is still arriving (readiness waits for all of it).
            intent = recorded | {v: max(n, recorded.get(v, 0)) for v, n in final.items()}
            deleted = doc.op is DocumentOp.DELETE
            done = DocumentState(doc.tenant, doc.doc_id, doc.version, deleted, final)
            if doc.chunk_total is not None:
                intent[PARTS_PENDING] = 0
                parted.append((doc, recorded, done))
            intents.append(DocumentState(doc.tenant, doc.doc_id, doc.version, deleted, intent))
            if doc.chunk_total is None and intent != final:
                settled.append(done)
                stale += stale_chunk_ids(doc.tenant, doc.doc_id, recorded, keep)
        self.states.put(collection, intents)
        self.store.upsert_chunks([d for d in docs if d.op is DocumentOp.UPSERT], collection)
        arriving = set()
        for doc, recorded, done in parted:
            if self.store.count_version_chunks(collection, doc.tenant, doc.doc_id, doc.version) >= doc.total_chunks:
                settled.append(done)
                stale += stale_chunk_ids(doc.tenant, doc.doc_id, recorded, (doc.version, doc.total_chunks))
            else:
                arriving.add((doc.tenant, doc.doc_id))
        if stale:
            self.store.delete_chunks(stale, collection)
        if settled:
            self.states.put(collection, settled)
        written = self.store.last_write_ts([collection, self.states.collection_for(collection)])
        return Applied(written, frozenset(arriving))

    def _apply_by_filter(
        self, collection: str, docs: list[EmbeddedDocument], known: Mapping[DocumentKey, DocumentState]
    ) -> None:
        # States without chunk sets: the state is still recorded before the chunks, so a document without a state
        # has no chunks in this collection and the filtered delete (a scan) is skipped for it.
        self.states.put(
            collection, [DocumentState(d.tenant, d.doc_id, d.version, d.op is DocumentOp.DELETE) for d in docs]
        )
        upserts = [d for d in docs if d.op is DocumentOp.UPSERT]
        self.store.upsert_chunks(upserts, collection)
        seen = [d for d in docs if (d.tenant, d.doc_id) in known and d.completes_version]  # parts: at the last one
        if replaced := [d for d in seen if d.op is DocumentOp.UPSERT]:
            self.store.delete_other_versions(replaced, collection)
        if deleted := [(d.tenant, d.doc_id) for d in seen if d.op is DocumentOp.DELETE]:
            self.store.delete_documents(deleted, collection)
