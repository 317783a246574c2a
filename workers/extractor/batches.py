"""BatchExtractor: the documents of a batch extracted side by side, each document's own events in order.

The stage's cost per document is mostly object-store round trips (read the holding, write the holder and the
holding, look the text up in the cache, read the original, cache the text), 1.5 to 9 ms each: done one document
after another they took longer than the parsing itself. On a bounded thread pool the documents' requests overlap
each other and the parsing. The events of one document run in one task, in the batch's order, because a later
event may supersede what an earlier one holds. The batch's outcome is known only when every task has finished,
so a TransientError of any document retries the whole batch with no task still writing to the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait

from ragbus.errors import PermanentError
from schemas.documents import DocumentEvent
from workers.extractor.extraction import DocumentExtractor, Outcome

Result = Outcome | PermanentError


class BatchExtractor:
    """Extracts a batch's documents `concurrency` at a time with one DocumentExtractor (one S3 client)."""

    def __init__(self, extractor: DocumentExtractor, concurrency: int) -> None:
        self.extractor = extractor
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="extract")

    def extract_all(self, events: Sequence[DocumentEvent]) -> list[Result]:
        """Each event's Outcome, or the PermanentError that dead-letters it, in the events' order; a
        TransientError (or a bug) of any event is raised after every document's task has stopped."""
        results: list[Result | None] = [None] * len(events)
        by_document: dict[tuple[str, str], list[int]] = {}
        for index, event in enumerate(events):
            by_document.setdefault((event.tenant, event.doc_id), []).append(index)

        def run(indices: list[int]) -> None:
            for index in indices:  # a failure other than a PermanentError stops this document's later events
                try:
                    results[index] = self.extractor.extract(events[index])
                except PermanentError as exc:
                    results[index] = exc

        if len(by_document) == 1:
            run(next(iter(by_document.values())))  # nothing to overlap: no hand-over to a pool thread
        else:
            futures = [self._pool.submit(run, indices) for indices in by_document.values()]
            wait(futures)
            for future in futures:
                future.result()  # re-raises the first failure
        assert all(result is not None for result in results)
        return [result for result in results if result is not None]

    def close(self) -> None:
        """Stop the pool's threads (a running batch finishes first)."""
        self._pool.shutdown(wait=True)
