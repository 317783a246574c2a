"""OriginalLedger: which document holds which original, so an original is removed when no document holds it.

Originals are content-addressed, so two documents with the same bytes share one object. Per document the ledger
keeps `documents/<tenant>/<doc_id hash>` = {sha256, version} and per original `holders/<sha256>/<doc hash>`.
An upsert with an original takes a hold on it; a delete, or an upsert with other bytes, releases the previous
hold; an original is deleted when its last hold goes. Events older than the recorded version are stale (a replay
of a superseded event): they change nothing. An original that travels inline (schema_version 3) is not stored and
takes no hold; when the document's cache entry says it held a stored original, that hold is released
(DocumentExtractor). With no entry (expired, or Redis lost it) the earlier original stays until the document's
next stored original or its delete: kept too long, never removed too early.

The holder is written before the holding and removed only when the holding moves to other bytes, so a holding of
some bytes implies its holder: a document that keeps its bytes writes only its new version, and a replay of the
recorded event writes nothing. Documents of one batch are recorded concurrently (BatchExtractor); taking a hold on
some bytes and releasing the last hold on them take turns per content hash, so an original is never deleted
between another document's hold and its read (across extractor replicas that is not guaranteed).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ragbus.object_store import S3ObjectStore
from workers.extractor.cache import doc_hash

_STRIPES = 64


@dataclass(frozen=True)
class Holding:
    """The original a document holds (None after a delete) as of `version`."""

    sha256: str | None
    version: int


class OriginalLedger:
    """Holds and releases originals in object storage."""

    def __init__(self, store: S3ObjectStore) -> None:
        self.store = store
        self._locks = [threading.Lock() for _ in range(_STRIPES)]

    def _lock(self, sha256: str) -> threading.Lock:
        return self._locks[int(sha256[:8], 16) % _STRIPES]

    def holding(self, tenant: str, doc_id: str) -> Holding | None:
        """What the document holds, or None when nothing was ever recorded."""
        record = self.store.get_json(f"documents/{tenant}/{doc_hash(tenant, doc_id)}")
        return Holding(record["sha256"], int(record["version"])) if isinstance(record, dict) else None

    def record(self, tenant: str, doc_id: str, version: int, sha256: str | None) -> bool:
        """The document now holds `sha256` (None: nothing), unless a later event was recorded: then False (stale)."""
        doc = doc_hash(tenant, doc_id)
        previous = self.holding(tenant, doc_id)
        if previous is not None and previous.version > version:
            return False
        if previous == Holding(sha256, version):
            return True  # this very event was recorded (a retried batch or a replay)
        if sha256 is not None and (previous is None or previous.sha256 != sha256):
            with self._lock(sha256):
                self.store.put_json(f"holders/{sha256}/{doc}", {"doc_id": doc_id, "tenant": tenant})
        self.store.put_json(f"documents/{tenant}/{doc}", {"sha256": sha256, "version": version})
        if previous is not None and previous.sha256 is not None and previous.sha256 != sha256:
            self._release(previous.sha256, doc)
        return True

    def _release(self, sha256: str, doc: str) -> None:
        with self._lock(sha256):
            self.store.delete(f"holders/{sha256}/{doc}")
            if not self.store.keys(f"holders/{sha256}/"):
                self.store.delete(f"originals/{sha256}")
