"""Freshness: seconds from publishing a changed document to the query API returning its new version.

Each probe replaces an indexed document with a new version whose text is a unique sentence and whose metadata
carries a unique probe id, then polls POST /v1/query with that sentence, filtered on the probe id, until a
citation of that document carries the new text. What is timed is what a user sees: broker, the three workers, the
index, and the API's cache invalidation (an upsert moves the cache on). The filter keeps ranking out of it: with
dense retrieval alone a long title can outweigh ten random words, and a probe would then be "missed" for ranking
(`diagnose` found one at rank 406 of 500), not for freshness. Retrieval quality is measured on its own.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from bench.scoring import percentile
from ragbus.document_publisher import to_message
from ragbus.embedding import SentenceEmbedder
from ragbus.kafka_clients import KafkaEventProducer
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.rows import ChunkHit
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings
from schemas.documents import DocumentEvent
from schemas.topics import Topics

log = logging.getLogger(__name__)

WORDS = [
    "amber",
    "basalt",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "jasper",
    "kelp",
    "lagoon",
    "marble",
    "nectar",
    "onyx",
    "prairie",
    "quartz",
    "reef",
    "saffron",
    "tundra",
    "umber",
    "velvet",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
    "orchard",
    "lantern",
    "compass",
    "meadow",
    "glacier",
    "canyon",
]
POLL_S = 0.05
PROBE_TOP_K = 5
PROBE_KEY = "freshness_probe"


def probe_text(rng: random.Random, round_no: int) -> str:
    """A sentence no other document contains."""
    words = " ".join(rng.sample(WORDS, 10))
    return f"Freshness probe {round_no}: {words}."


async def _returned(
    client: httpx.AsyncClient, doc_id: str, text: str, probe_id: str | None, top_k: int = PROBE_TOP_K
) -> bool | str:
    """Whether the API returns the new text (or, on an error, its status and body); `probe_id` filters on it."""
    body = {"query": text, "top_k": top_k, "retrieve_only": True, "filters": {PROBE_KEY: probe_id} if probe_id else {}}
    response = await client.post("/v1/query", json=body)
    if response.status_code != 200:
        return f"{response.status_code} {response.text[:200]}"
    return any(c["doc_id"] == doc_id and text in c["text"] for c in response.json()["citations"])


def _rank(hits: Sequence[ChunkHit], doc_id: str, text: str) -> int | None:
    return next((i for i, h in enumerate(hits) if h.doc_id == doc_id and text in h.text), None)


async def diagnose(settings: Settings, client: httpx.AsyncClient, doc: DocumentEvent, text: str) -> dict[str, object]:
    """Why a probe was not returned: what Milvus holds for the document, and what searches find past the API cache."""
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        rows = store.call(
            lambda: store.client.query(
                store.alias,
                filter=f"doc_id == {milvus_str(doc.doc_id)}",
                output_fields=["version", "chunk_index", "text"],
            )
        )
        vector = SentenceEmbedder(settings.embedding).encode([text], check_length=False)[0].tolist()
        ranks = {
            f"milvus_top_{k}": _rank(store.search(vector, k, doc.tenant), doc.doc_id, text) for k in (PROBE_TOP_K, 500)
        }
    finally:
        store.close()
    filtered = await _returned(client, doc.doc_id, text, str(doc.metadata.get(PROBE_KEY, "")), top_k=PROBE_TOP_K + 1)
    unfiltered = await _returned(client, doc.doc_id, text, None, top_k=50)
    return {
        "doc_id": doc.doc_id,
        "milvus_rows": [
            {"version": r["version"], "chunk": r["chunk_index"], "has_probe": text in r["text"]} for r in rows
        ],
        "rank_in_direct_search": ranks,
        "api_filtered_with_another_cache_key": filtered,
        "api_unfiltered_top_50": unfiltered,
    }


@dataclass
class Probe:
    """One published change: the new version, its text and probe id, and when it was published."""

    changed: DocumentEvent
    text: str
    probe_id: str
    published: float

    async def returned(self, client: httpx.AsyncClient) -> bool | str:
        """Whether the API returns this version now (or, on an error, its status and body)."""
        return await _returned(client, self.changed.doc_id, self.text, self.probe_id)


async def publish_probe(producer: KafkaEventProducer, topic: str, doc: DocumentEvent, text: str) -> Probe:
    """Publish a new version of `doc` whose text is `text` and whose metadata carries a new probe id."""
    probe_id = uuid.uuid4().hex
    metadata = {**doc.metadata, PROBE_KEY: probe_id}
    update = {"text": text, "version": time.time_ns() // 1000, "event_id": uuid.uuid4().hex, "metadata": metadata}
    changed = doc.model_copy(update=update | {"produced_at": datetime.now(UTC)})  # the workers log their share
    message = to_message(changed, topic, max_bytes=1_000_000)
    published = time.perf_counter()
    await producer.send_all([message])
    return Probe(changed, text, probe_id, published)


async def probe(
    producer: KafkaEventProducer, topic: str, client: httpx.AsyncClient, doc: DocumentEvent, text: str, timeout_s: float
) -> tuple[float | None, DocumentEvent]:
    """Publish a new version of `doc` and poll until the API returns it; (seconds or None on timeout, the version).

    An API error (a non-200 answer) counts as not returned yet; the last one is logged at the timeout.
    """
    sent = await publish_probe(producer, topic, doc, text)
    deadline = sent.published + timeout_s
    last: bool | str = False
    while time.perf_counter() < deadline:
        if (last := await sent.returned(client)) is True:
            return time.perf_counter() - sent.published, sent.changed
        await asyncio.sleep(POLL_S)
    log.warning("probe of %r not returned in %.0fs (last answer: %s)", doc.doc_id, timeout_s, last)
    return None, sent.changed


def _summary(seconds: list[float], misses: list[dict[str, object]], timeout_s: float) -> dict[str, object]:
    result: dict[str, object] = {"probes": len(seconds), "missed": len(misses), "timeout_s": timeout_s}
    if misses:
        result["misses"] = misses
    if seconds:
        result |= {
            "p50_s": round(percentile(seconds, 50), 3),
            "p95_s": round(percentile(seconds, 95), 3),
            "max_s": round(max(seconds), 3),
        }
    return result


async def measure(
    settings: Settings,
    api_url: str,
    docs: Sequence[DocumentEvent],
    rounds: int,
    timeout_s: float = 120,
    seed: int = 7,
) -> dict[str, object]:
    """`rounds` probes one after another on an otherwise idle system; p50/p95 seconds."""
    rng = random.Random(seed)
    topic = Topics(settings.kafka.topic_prefix).documents
    seconds: list[float] = []
    misses: list[dict[str, object]] = []
    async with KafkaEventProducer(settings) as producer, httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        for round_no in range(rounds):
            doc = docs[rng.randrange(len(docs))]
            text = probe_text(rng, round_no)
            took, published = await probe(producer, topic, client, doc, text, timeout_s)
            if took is None:
                misses.append(await diagnose(settings, client, published, text))
            else:
                seconds.append(took)
    return _summary(seconds, misses, timeout_s)


async def measure_during(
    settings: Settings,
    api_url: str,
    docs: Sequence[DocumentEvent],
    bulk: asyncio.Task[object],
    every_s: float = 2.0,
    timeout_s: float = 120,
    seed: int = 11,
) -> dict[str, object]:
    """Probes published every `every_s` while `bulk` runs, each on its own document of `docs`; p50/p95 seconds.

    A probe published during a bulk waits behind the bulk's documents on its partition, so probes taken one after
    another would time the first one's wait and then an emptied queue. Here they are published on a schedule and
    polled in turn, one query at a time as in `measure`: a probe is seen at most one sweep of the pending ones late
    (`longest_sweep_s`). A sweep longer than `every_s` delays the next probe; `published_every_s` is the real mean
    spacing. A failed bulk raises at once; probes not returned in `timeout_s` are diagnosed after the bulk.
    """
    if not docs:
        raise ValueError("no documents to probe: the probes need documents outside the bulk")
    rng = random.Random(seed)
    topic = Topics(settings.kafka.topic_prefix).documents
    chosen = iter(rng.sample(list(docs), len(docs)))
    seconds: list[float] = []
    timed_out: list[Probe] = []
    pending: list[Probe] = []
    sent_at: list[float] = []
    longest_sweep = 0.0
    async with KafkaEventProducer(settings) as producer, httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        next_at = time.perf_counter()
        while not bulk.done() or pending:
            if bulk.done() and (failure := bulk.exception()) is not None:
                raise failure
            now = time.perf_counter()
            if not bulk.done() and now >= next_at and (doc := next(chosen, None)) is not None:
                pending.append(await publish_probe(producer, topic, doc, probe_text(rng, len(sent_at))))
                sent_at.append(pending[-1].published)
                next_at = max(next_at, sent_at[-1]) + every_s  # late after a long sweep: spaced from this one
            sweep_began = time.perf_counter()
            for sent in list(pending):
                if await sent.returned(client) is True:
                    seconds.append(time.perf_counter() - sent.published)
                    pending.remove(sent)
                elif time.perf_counter() > sent.published + timeout_s:
                    timed_out.append(sent)
                    pending.remove(sent)
            longest_sweep = max(longest_sweep, time.perf_counter() - sweep_began)
            await asyncio.sleep(POLL_S)
        misses = [await diagnose(settings, client, sent.changed, sent.text) for sent in timed_out]
    spacing = (sent_at[-1] - sent_at[0]) / (len(sent_at) - 1) if len(sent_at) > 1 else every_s
    return _summary(seconds, misses, timeout_s) | {
        "published_every_s": round(spacing, 2),
        "longest_sweep_s": round(longest_sweep, 3),
    }
