"""BatchExtractor: the documents of a batch extracted side by side, each document's own events in order.

A stored original costs object-store round trips (read the holding, write the holder and the holding, read the
original), 1.5 to 9 ms each: done one document after another they took longer than the parsing itself. On a
bounded thread pool the documents' requests overlap each other and the parsing. The events of one document run in
one task, in the batch's order, because a later event may supersede what an earlier one holds; the task carries
the document's cache entry from event to event, so the batch ends knowing which entries changed. The batch's
outcome is known only when every task has finished, so a TransientError of any document retries the whole batch
with no task still writing to the ledger. `extract_batch` wraps it in the cache's two round trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ragbus.errors import PermanentError
from schemas.documents import DocumentEvent, DocumentOp
from workers.extractor.cache import CachedExtraction, DocKey, ExtractionCache
from workers.extractor.extraction import DocumentExtractor, Outcome

Result = Outcome | PermanentError


@dataclass
class BatchResult:
    """Each event's Outcome or PermanentError, in order, and the cache entries the batch changed (None: removed)."""

    results: list[Result]
    entries: dict[DocKey, CachedExtraction | None] = field(default_factory=dict)


def _next_entry(
    event: DocumentEvent, outcome: Outcome, entry: CachedExtraction | None
) -> tuple[CachedExtraction | None, bool]:
    """The document's cache entry after `event`, and whether it changed (a delete always removes the entry: its
    documents' entries are not read, a batch of deletes makes one round trip)."""
    if entry is not None and event.version < entry.version:
        return entry, False  # an older event replayed: the entry stays the newer one's
    if event.op is DocumentOp.DELETE:
        return None, True
    if event.original is None or outcome.extraction is None:
        return entry, False
    stored = event.original.data is None
    if outcome.how == "cache_hit" and entry is not None and entry.stored == stored:
        return entry, False
    return CachedExtraction(event.original.sha256, event.version, stored, outcome.extraction), True


class BatchExtractor:
    """Extracts a batch's documents `concurrency` at a time with one DocumentExtractor (one S3 client)."""

    def __init__(self, extractor: DocumentExtractor, concurrency: int) -> None:
        self.extractor = extractor
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="extract")

    def extract_all(
        self, events: Sequence[DocumentEvent], cached: Mapping[DocKey, CachedExtraction] | None = None
    ) -> BatchResult:
        """Each event's Outcome, or the PermanentError that dead-letters it, in the events' order, from the cache
        entries `cached`; a TransientError (or a bug) of any event is raised after every document's task stopped."""
        results: list[Result | None] = [None] * len(events)
        entries: dict[DocKey, CachedExtraction | None] = {}
        by_document: dict[DocKey, list[int]] = {}
        for index, event in enumerate(events):
            by_document.setdefault((event.tenant, event.doc_id), []).append(index)

        def run(doc: DocKey, indices: list[int]) -> None:
            entry = (cached or {}).get(doc)
            changed = False
            for index in indices:  # a failure other than a PermanentError stops this document's later events
                event = events[index]
                try:
                    outcome = self.extractor.extract(event, entry)
                except PermanentError as exc:
                    results[index] = exc
                    continue
                results[index] = outcome
                entry, now = _next_entry(event, outcome, entry)
                changed = changed or now
            if changed:
                entries[doc] = entry

        if len(by_document) == 1:
            run(*next(iter(by_document.items())))  # nothing to overlap: no hand-over to a pool thread
        else:
            futures = [self._pool.submit(run, doc, indices) for doc, indices in by_document.items()]
            wait(futures)
            for future in futures:
                future.result()  # re-raises the first failure
        assert all(result is not None for result in results)
        return BatchResult([result for result in results if result is not None], entries)

    def close(self) -> None:
        """Stop the pool's threads (a running batch finishes first)."""
        self._pool.shutdown(wait=True)


async def extract_batch(
    extractor: BatchExtractor, cache: ExtractionCache, events: Sequence[DocumentEvent]
) -> list[Result]:
    """The stage's work on a batch: its documents' cache entries read (one round trip), the batch extracted off the
    event loop (heartbeats continue), the changed entries written (one round trip)."""
    cached = await cache.get_many(events)
    batch = await asyncio.to_thread(extractor.extract_all, events, cached)
    await cache.put_many(batch.entries)
    return batch.results
