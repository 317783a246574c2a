"""The extractor's batches on a real SeaweedFS and a real Redis: documents side by side, each document's events in
order, an original kept while any document of the batch holds it, a retried batch writing no ledger record again,
and inline originals costing no object-store request."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import pytest
from pydantic import SecretStr

from ragbus.errors import PermanentError
from ragbus.object_store import S3ObjectStore
from ragbus.redis_store import KeySpace, open_redis
from ragbus.settings import ObjectSettings, RedisSettings
from schemas.documents import DocumentEvent, DocumentOp, original_ref
from tests.documents.samples import html_page, pdf_bytes
from workers.extractor.batches import BatchExtractor, Result, extract_batch
from workers.extractor.cache import CachedExtraction, DocKey, ExtractionCache
from workers.extractor.extraction import DocumentExtractor, Outcome

pytestmark = [pytest.mark.integration]
HTML, PDF = "text/html", "application/pdf"
R = TypeVar("R")


class CountingStore(S3ObjectStore):
    """The real store, counting the requests it makes by kind (put, get, delete, list)."""

    def __init__(self, settings: ObjectSettings, connections: int) -> None:
        super().__init__(settings, connections)
        self.requests: list[str] = []

    def _call(self, what: str, call: Callable[[], R]) -> R:
        kind = what.split(" ", maxsplit=1)[0]
        if kind != "read":  # reading the body of a get is not a request of its own
            self.requests.append(kind)
        return super()._call(what, call)


@dataclass
class Stage:
    """The stage's batch path (extract_batch) with a real Redis cache under a namespace of its own."""

    extractor: BatchExtractor
    redis_url: str
    namespace: str

    def run(self, events: Sequence[DocumentEvent]) -> list[Result]:
        return asyncio.run(self._with_cache(lambda cache: extract_batch(self.extractor, cache, events)))

    def entries(self, *docs: str) -> dict[DocKey, CachedExtraction]:
        events = [DocumentEvent(doc_id=d, media_type=HTML, original=original_ref(b"x")) for d in docs]
        return asyncio.run(self._with_cache(lambda cache: cache.get_many(events)))

    async def _with_cache(self, work: Callable[[ExtractionCache], Awaitable[R]]) -> R:
        redis = open_redis(RedisSettings(url=SecretStr(self.redis_url)))  # a client per event loop
        try:
            return await work(ExtractionCache(redis, KeySpace(self.namespace), 3600))
        finally:
            await redis.aclose()


@pytest.fixture
def batches(seaweedfs: dict[str, str], base_servers: dict[str, str]) -> Iterator[tuple[Stage, CountingStore]]:
    store = CountingStore(
        ObjectSettings(
            url=seaweedfs["RAGBUS_OBJECTS_URL"],
            access_key=seaweedfs["RAGBUS_OBJECTS_ACCESS_KEY"],
            secret_key=seaweedfs["RAGBUS_OBJECTS_SECRET_KEY"],
            bucket=f"t{uuid.uuid4().hex[:10]}",
        ),
        connections=5,
    )
    store.ensure_bucket()
    extractor = BatchExtractor(DocumentExtractor(store, 1_000_000), concurrency=4)
    try:
        yield Stage(extractor, base_servers["redis"], f"t{uuid.uuid4().hex[:10]}"), store
    finally:
        extractor.close()
        store.close()


def upsert(store: S3ObjectStore, doc_id: str, version: int, data: bytes, media_type: str = HTML) -> DocumentEvent:
    store.put_original(data, media_type)
    return DocumentEvent(doc_id=doc_id, version=version, media_type=media_type, original=original_ref(data))


def page(word: str) -> bytes:
    return html_page(f"About {word}", word.title(), [f"The {word} is described here at some length. " * 6] * 3)


def test_a_batch_keeps_each_documents_events_in_order_and_rejects_only_the_bad_one(
    batches: tuple[Stage, CountingStore],
) -> None:
    extractor, store = batches
    first, second, shared = page("lighthouse"), page("harbour"), page("granary")
    pdf = pdf_bytes(["Page one of the report on tides."] * 3)
    empty = DocumentEvent(doc_id="empty", version=1, media_type=HTML, original=original_ref(b"x").model_copy(
        update={"size": 0}))  # fmt: skip
    events = [
        upsert(store, "a", 1, first),
        upsert(store, "p", 1, pdf, PDF),
        upsert(store, "s", 1, shared),
        empty,
        upsert(store, "a", 2, second),  # the same document again: after its version 1, never beside it
        upsert(store, "t", 1, shared),
    ]
    results = extractor.run(events)
    assert isinstance(results[3], PermanentError) and results[3].code == "empty_file"
    outcomes = [r for r in results if isinstance(r, Outcome)]
    assert [(o.document.doc_id, o.document.version) for o in outcomes if o.document] == [
        ("a", 1), ("p", 1), ("s", 1), ("a", 2), ("t", 1)
    ]  # fmt: skip
    assert outcomes[0].document is not None and "lighthouse" in outcomes[0].document.blocks[-1].text
    ledger = extractor.extractor.extractor.ledger
    assert ledger is not None
    holding = ledger.holding("default", "a")
    assert holding is not None and holding.sha256 == original_ref(second).sha256 and holding.version == 2
    assert not store.exists(original_ref(first).key)  # released by version 2, held by nobody else

    # "s" moves to other bytes while "t" still holds the shared page: it stays; a delete of "t" then removes it.
    extractor.run([upsert(store, "s", 2, pdf, PDF)])
    assert store.exists(original_ref(shared).key)
    extractor.run([DocumentEvent(doc_id="t", version=2, op=DocumentOp.DELETE, text="")])
    assert not store.exists(original_ref(shared).key) and store.exists(original_ref(pdf).key)


def test_a_retried_batch_parses_nothing_and_writes_no_ledger_record_again(
    batches: tuple[Stage, CountingStore],
) -> None:
    extractor, store = batches
    events = [upsert(store, f"d{n}", 1, page(word)) for n, word in enumerate(["mill", "quay", "forge"])]
    assert {r.how for r in extractor.run(events) if isinstance(r, Outcome)} == {"extracted"}
    store.requests.clear()
    again = extractor.run(events)
    assert {r.how for r in again if isinstance(r, Outcome)} == {"cache_hit"}
    # per document the holding read alone (the text comes from Redis): nothing written, no original read
    assert sorted(store.requests) == ["get"] * 3


def test_documents_taking_and_releasing_one_original_in_a_batch_never_lose_it(
    batches: tuple[Stage, CountingStore],
) -> None:
    extractor, store = batches
    shared, other = page("orchard"), page("meadow")
    for round_number in range(1, 6):  # a race, if there were one, would show in some round
        version = 2 * round_number
        extractor.run([upsert(store, "x", version, shared)])
        results = extractor.run([upsert(store, "x", version + 1, other), upsert(store, f"y{round_number}", 1, shared)])
        assert all(isinstance(r, Outcome) and r.how in {"extracted", "cache_hit"} for r in results), results
        assert store.exists(original_ref(shared).key)
        extractor.run([DocumentEvent(doc_id=f"y{round_number}", version=2, op=DocumentOp.DELETE, text="")])
        assert not store.exists(original_ref(shared).key)  # its last holder gone (the next round stores it again)


def test_inline_originals_cost_no_object_store_request_and_release_an_earlier_stored_one(
    batches: tuple[Stage, CountingStore],
) -> None:
    extractor, store = batches
    stored, small = page("windmill"), page("ferry")
    extractor.run([upsert(store, "m", 1, stored)])
    assert store.exists(original_ref(stored).key)
    inline = [
        DocumentEvent(doc_id=f"i{n}", version=1, media_type=HTML, original=original_ref(page(w), inline=True))
        for n, w in enumerate(["smithy", "tannery"])
    ]
    store.requests.clear()
    first = extractor.run(inline)
    assert [r.how for r in first if isinstance(r, Outcome)] == ["extracted", "extracted"]
    assert store.requests == []  # neither the ledger nor an original nor a cache object
    again = extractor.run(inline)  # a replay: the text from the cache
    assert [r.how for r in again if isinstance(r, Outcome)] == ["cache_hit", "cache_hit"]
    assert store.requests == []
    assert [o.document.blocks for o in again if isinstance(o, Outcome) and o.document] == [
        o.document.blocks for o in first if isinstance(o, Outcome) and o.document
    ]

    # "m" moves from its stored original to an inline one: the stored one, held by nobody else, is removed
    now_small = DocumentEvent(doc_id="m", version=2, media_type=HTML, original=original_ref(small, inline=True))
    [moved] = extractor.run([now_small])
    assert isinstance(moved, Outcome) and moved.how == "extracted"
    assert not store.exists(original_ref(stored).key)
    assert extractor.entries("m")[("default", "m")].stored is False

    # a delete removes the document's cached text; an older event replayed leaves a newer entry as it is
    extractor.run([DocumentEvent(doc_id="i0", version=2, op=DocumentOp.DELETE, text="")])
    assert set(extractor.entries("i0", "i1")) == {("default", "i1")}
    [old] = extractor.run([inline[1].model_copy(update={"version": 0, "original": original_ref(small, inline=True)})])
    assert isinstance(old, Outcome) and old.how == "extracted"
    entry = extractor.entries("i1")[("default", "i1")]
    assert (entry.version, entry.sha256) == (1, inline[1].original.sha256)  # type: ignore[union-attr]
