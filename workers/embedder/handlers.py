"""Embedder stage: ChunkedDocument in, EmbeddedDocument out (same key)."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
from aiokafka import ConsumerRecord

from ragbus import metrics
from ragbus.embedding import SentenceEmbedder
from ragbus.errors import PermanentError
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage
from ragbus.record_parts import encode_in_parts
from ragbus.redis_store import RedisEmbeddingCache
from schemas.chunks import ChunkedDocument
from schemas.codec import decode
from schemas.documents import document_key
from schemas.embeddings import EmbeddedChunk, EmbeddedDocument, pack_vector
from workers.embedder.batching import plan_model_batches
from workers.lanes import in_bulk_batch, yield_to_live
from workers.runtime import Inbound, Rejected

log = logging.getLogger(__name__)
# How often a bulk batch looks for live records while one of its model calls runs (a look costs no round trip).
LIVE_CHECK_S = 0.02


class EmbedderHandler:
    """Looks every chunk up in the cache, embeds the misses in batches, forwards vectors."""

    stage = "embedder"

    def __init__(
        self,
        embedder: SentenceEmbedder,
        cache: RedisEmbeddingCache,
        producer: KafkaEventProducer,
        routes: dict[str, str],
    ) -> None:
        self.embedder, self.cache, self.producer, self.routes = embedder, cache, producer, routes
        self._bulk_calls: set[asyncio.Future[np.ndarray]] = set()

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> ChunkedDocument:
        """The chunked document."""
        return decode(record.value, ChunkedDocument)

    def chunks_in(self, value: ChunkedDocument) -> int:
        """Each chunk is one text to embed."""
        return len(value.chunks)

    async def stores_answer(self) -> bool:
        """Redis and Kafka answer."""
        return await self.cache.answers() and await self.producer.answers()

    async def process(self, batch: list[Inbound[ChunkedDocument]]) -> list[Rejected]:
        """Embed the batch's chunks (cache first) and produce one EmbeddedDocument per input (in parts if large)."""
        measured, rejected = await asyncio.to_thread(self._measure, batch)
        accepted = [item for item, _ in measured]
        texts = [item.value.embedding_input(chunk) for item in accepted for chunk in item.value.chunks]
        vectors = await self.embed(texts, [count for _, counts in measured for count in counts])
        out: list[OutboundMessage] = []
        cursor = 0
        for item in accepted:
            doc = item.value
            chunks = []
            for chunk in doc.chunks:
                chunks.append(EmbeddedChunk(**chunk.model_dump(), vector=pack_vector(vectors[cursor])))
                cursor += 1
            embedded = EmbeddedDocument(
                **doc.model_dump(exclude={"schema_version", "embed_prefix", "tokenizer", "chunks"}),
                model=self.embedder.model_name,
                dim=self.embedder.dim,
                chunks=chunks,
            )
            out += [
                OutboundMessage(
                    self.routes[item.record.topic],  # the same lane downstream
                    document_key(doc.tenant, doc.doc_id),
                    part,
                    list(item.record.headers or ()),
                )
                # Vectors make a version about 2 KB a chunk larger: one too large for a record goes in parts.
                for part in encode_in_parts(embedded, self.producer.settings.kafka.max_message_bytes)
            ]
        await self.producer.send_all(out)
        return rejected

    def token_counts(self, doc: ChunkedDocument) -> list[int]:
        """Tokens the model sees for each chunk: the chunker's counts when its tokenizer was this model's."""
        if doc.tokenizer == self.embedder.settings.model:
            return [chunk.token_count for chunk in doc.chunks]
        return self.embedder.token_lengths([doc.embedding_input(chunk) for chunk in doc.chunks])

    def _measure(
        self, batch: list[Inbound[ChunkedDocument]]
    ) -> tuple[list[tuple[Inbound[ChunkedDocument], list[int]]], list[Rejected]]:
        # A chunk over the model's limit would be truncated silently by the model: refuse its document instead.
        measured, rejected = [], []
        limit = self.embedder.max_seq_length
        for item in batch:
            counts = self.token_counts(item.value)
            longest = max(counts, default=0)
            if longest > limit:
                error = PermanentError(
                    f"document {item.value.doc_id!r} has a chunk of {longest} tokens, over the model's {limit}",
                    code="chunk_too_long",
                )
                rejected.append(Rejected(item.record, error))
            else:
                measured.append((item, counts))
        return measured, rejected

    async def embed(self, texts: list[str], token_counts: list[int]) -> np.ndarray:
        """Vectors of `texts` (of `token_counts` model tokens each): cached ones from Redis, the rest computed once
        each and cached.

        The misses are encoded in model calls of at most RAGBUS_EMBED_BATCH_SIZE planned by token count
        (`plan_model_batches`), so that padding is low without a corpus-wide sort; each call's vectors are cached
        as soon as they are computed, so a worker stopping mid-batch (graceful shutdown cancels the batch at an
        await) keeps what it embedded for the batch's redelivery.

        A bulk batch's calls (of RAGBUS_EMBED_BULK_BATCH_SIZE) run on the model's bulk thread, and the batch gives
        way to live records while a call runs, not only between calls: the call goes on beside the live batch and
        caches its vectors, and the bulk batch, polled again, waits for it before it looks in the cache.
        """
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        bulk = in_bulk_batch()
        if bulk and self._bulk_calls:
            await asyncio.wait(set(self._bulk_calls))  # calls left running when a bulk batch gave way
        cached = await self.cache.get_many(texts)
        missing: dict[str, int] = {}
        for text, count, vector in zip(texts, token_counts, cached, strict=True):
            if vector is None:
                missing[text] = count
        metrics.EMBEDDING_CACHE.labels("hit").inc(len(texts) - sum(v is None for v in cached))
        metrics.EMBEDDING_CACHE.labels("miss").inc(sum(v is None for v in cached))
        fresh: dict[str, np.ndarray] = {}
        misses = list(missing)
        settings = self.embedder.settings
        call_size = settings.bulk_batch_size if bulk else settings.batch_size
        for group in plan_model_batches(list(missing.values()), call_size):
            part = [misses[i] for i in group]
            computed = await (self._bulk_call(part) if bulk else self._encode_and_cache(part, bulk=False))
            fresh.update(zip(part, computed, strict=True))
            # A bulk batch gives way here to live records (it resumes from the cache); a live batch never does.
            await yield_to_live()
        return np.stack([v if v is not None else fresh[t] for t, v in zip(texts, cached, strict=True)])

    async def _encode_and_cache(self, texts: list[str], *, bulk: bool) -> np.ndarray:
        on_thread = self.embedder.on_bulk_thread if bulk else self.embedder.on_model_thread
        computed = await on_thread(lambda: self.embedder.encode(texts, check_length=False))
        await self.cache.put_many(texts, computed)
        return computed

    async def _bulk_call(self, texts: list[str]) -> np.ndarray:
        # Checked every LIVE_CHECK_S while the call runs: yield_to_live raises YieldToLive and the call runs on.
        call = asyncio.ensure_future(self._encode_and_cache(texts, bulk=True))
        self._bulk_calls.add(call)
        call.add_done_callback(self._bulk_calls.discard)
        try:
            while not (await asyncio.wait({call}, timeout=LIVE_CHECK_S))[0]:
                await yield_to_live()
        except BaseException:  # the batch gave way (or stops): nobody awaits the call, which caches its vectors
            call.add_done_callback(_log_failure)
            raise
        return call.result()


def _log_failure(call: asyncio.Future[np.ndarray]) -> None:
    if not call.cancelled() and (error := call.exception()) is not None:
        # Its vectors are computed again when the bulk batch is polled again.
        log.warning("a bulk model call left running when its batch gave way failed: %s", error)
