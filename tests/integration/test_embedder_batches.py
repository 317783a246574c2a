"""The embedder's handler on the real model and Redis: token counts it trusts or measures, planned model calls."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from aiokafka import ConsumerRecord
from pydantic import SecretStr

from ragbus import metrics
from ragbus.embedding import ModelTokenizer, SentenceEmbedder
from ragbus.kafka_clients import KafkaEventProducer
from ragbus.redis_store import KeySpace, RedisEmbeddingCache, open_redis
from ragbus.settings import EmbeddingSettings, RedisSettings, load_settings
from schemas.chunks import Chunk, ChunkedDocument
from schemas.documents import DocumentOp
from workers.embedder.handlers import EmbedderHandler
from workers.lanes import YieldToLive, batch_of_lane
from workers.runtime import Inbound

MODEL = EmbeddingSettings().model


@pytest.fixture(scope="module")
def embedder() -> Iterator[SentenceEmbedder]:
    loaded = SentenceEmbedder(EmbeddingSettings(batch_size=4)).load()
    yield loaded
    loaded.close()


def handler_for(embedder: SentenceEmbedder, redis_url: str) -> EmbedderHandler:
    redis = open_redis(RedisSettings(url=SecretStr(redis_url)))
    cache = RedisEmbeddingCache(redis, KeySpace(f"test-{uuid.uuid4().hex[:8]}"), embedder.model_name, 600)
    # The producer is never started: these tests stop before the handler produces.
    return EmbedderHandler(embedder, cache, KafkaEventProducer(load_settings()), {})


def chunked(texts: list[str], counts: list[int], tokenizer: str | None) -> ChunkedDocument:
    chunks = [
        Chunk(chunk_id=f"c{i}", index=i, text=text, start=0, end=len(text), token_count=count)
        for i, (text, count) in enumerate(zip(texts, counts, strict=True))
    ]
    return ChunkedDocument(
        event_id=uuid.uuid4().hex,
        op=DocumentOp.UPSERT,
        doc_id=f"d-{uuid.uuid4().hex[:6]}",
        version=1,
        produced_at=datetime.now(UTC),
        tokenizer=tokenizer,
        chunks=chunks,
    )


def inbound(doc: ChunkedDocument, offset: int) -> Inbound[ChunkedDocument]:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        "chunks", 0, offset, 0, 0, doc.doc_id.encode(), b"", None, 0, 0, ()
    )
    return Inbound(record, doc)


def test_counts_of_this_models_chunker_are_trusted_others_are_measured(
    embedder: SentenceEmbedder, base_servers: dict[str, str]
) -> None:
    handler = handler_for(embedder, base_servers["redis"])
    tokenizer = ModelTokenizer.from_settings(EmbeddingSettings())
    texts = ["a short passage", "a somewhat longer passage about protein folding in mice"]
    measured = [tokenizer.count(t) for t in texts]
    assert tokenizer.model == MODEL
    # The chunker of this model counted them: its counts are taken as they are (no second tokenization).
    assert handler.token_counts(chunked(texts, [7, 9], MODEL)) == [7, 9]
    # Counted by another model's tokenizer, or by an older chunker that named none: counted again here.
    assert handler.token_counts(chunked(texts, [7, 9], "another-model")) == measured
    assert handler.token_counts(chunked(texts, [7, 9], None)) == measured


def test_a_chunk_over_the_model_limit_is_refused_when_measured_here(
    embedder: SentenceEmbedder, base_servers: dict[str, str]
) -> None:
    handler = handler_for(embedder, base_servers["redis"])
    fits = chunked(["fits the model"], [5], None)
    too_long = chunked(["fits", "word " * 400], [3, 200], "another-model")
    measured, rejected = handler._measure([inbound(fits, 0), inbound(too_long, 1)])
    assert [item.value.doc_id for item, _ in measured] == [fits.doc_id]
    assert [r.record.offset for r in rejected] == [1]
    assert rejected[0].error.code == "chunk_too_long"
    assert "402 tokens" in str(rejected[0].error)


def test_planned_calls_give_each_text_its_own_vector_in_order_and_fill_the_cache(
    embedder: SentenceEmbedder, base_servers: dict[str, str]
) -> None:
    handler = handler_for(embedder, base_servers["redis"])
    tokenizer = ModelTokenizer.from_settings(EmbeddingSettings())
    texts = [f"passage {i} " + "about cells and receptors " * (i * 7 % 23) for i in range(13)]
    texts += [texts[2], texts[5]]  # repeated texts are embedded once
    counts = [tokenizer.count(t) for t in texts]
    alone = np.stack([embedder.encode([t])[0] for t in texts])

    async def embed_twice() -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None]]:
        # Some vectors cached beforehand, as after an earlier version of the document.
        await handler.cache.put_many(texts[:3], alone[:3])
        first = await handler.embed(texts, counts)
        cached = await handler.cache.get_many(texts)
        second = await handler.embed(texts, counts)
        await handler.cache.redis.aclose()
        return first, second, cached

    first, second, cached = asyncio.run(embed_twice())
    # Batch composition changes padding, not vectors: each equals the text embedded alone.
    assert first.shape == (15, 384)
    np.testing.assert_allclose(first, alone, atol=1e-5)
    np.testing.assert_array_equal(second, first)
    assert all(v is not None for v in cached)


def test_a_bulk_batch_gives_way_while_its_model_call_runs_and_the_call_still_caches_its_vectors(
    embedder: SentenceEmbedder, base_servers: dict[str, str]
) -> None:
    handler = handler_for(embedder, base_servers["redis"])
    tokenizer = ModelTokenizer.from_settings(EmbeddingSettings())
    texts = [f"bulk passage {i} on the tides of a northern harbour" for i in range(4)]  # one bulk call of 4
    counts = [tokenizer.count(t) for t in texts]
    alone = np.stack([embedder.encode([t])[0] for t in texts])
    release = threading.Event()

    async def live_waits() -> bool:
        return True

    async def no_live() -> bool:
        return False

    async def scenario() -> tuple[list[np.ndarray | None], np.ndarray, list[np.ndarray | None], float, np.ndarray]:
        # Something else holds the bulk thread, so the batch's call cannot even start.
        busy = asyncio.ensure_future(embedder.on_bulk_thread(release.wait))
        with batch_of_lane(live_waits), pytest.raises(YieldToLive):
            await handler.embed(texts, counts)
        # The batch gave way with its call still to run; a live call on the model's thread waits for none of it.
        live = await asyncio.wait_for(embedder.encode_async(["a live edit about a kea"]), timeout=30)
        before_release = await handler.cache.get_many(texts)
        release.set()
        await busy
        misses = metrics.EMBEDDING_CACHE.labels("miss")._value.get()
        with batch_of_lane(no_live):  # polled again: it waits for the call left running, then finds every vector
            again = await handler.embed(texts, counts)
        after = await handler.cache.get_many(texts)
        computed = metrics.EMBEDDING_CACHE.labels("miss")._value.get() - misses
        await handler.cache.redis.aclose()
        return before_release, live, after, computed, again

    before_release, live, after, computed, again = asyncio.run(scenario())
    assert before_release == [None] * 4
    np.testing.assert_allclose(live, embedder.encode(["a live edit about a kea"]), atol=1e-5)
    assert all(vector is not None for vector in after)
    assert computed == 0  # nothing embedded twice: the call that ran on after the batch gave way cached them
    np.testing.assert_allclose(again, alone, atol=1e-5)
