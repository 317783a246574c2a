"""ExtractionCache: each document's last extracted text, in Redis, so a replay or a reindex parses no file twice.

One entry per document and extractor version (`KeySpace.extraction`): the sha256 of the original it was extracted
from, the event's version, whether that original was stored in object storage, and the text (title and blocks),
zlib-compressed, for RAGBUS_REDIS_EXTRACTION_TTL_S. An event whose original has the entry's sha256 reuses its text.
A batch reads the entries of its documents in one round trip and writes what changed in another: an extraction
replaces the entry (never by an older version's), a delete removes it, so a deleted document's text does not stay
behind. A new EXTRACTOR_VERSION (a new library or a fix) re-extracts everything once. Redis is a cache here: an
entry lost costs a parse, never a document.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from ragbus.errors import TransientError
from ragbus.redis_store import REDIS_DOWN, KeySpace, redis_answers
from schemas.documents import DocumentEvent
from schemas.extracted import Block
from workers.extractor.formats.types import Extraction

# Bump when a format module's output changes: cached text of the previous version is then ignored.
EXTRACTOR_VERSION = "ragbus-extract-1"

DocKey = tuple[str, str]  # (tenant, doc_id)


def doc_hash(tenant: str, doc_id: str) -> str:
    """A document's name in keys (the cache's and the ledger's): fixed length, any characters of its id."""
    return hashlib.sha256(f"{tenant}\x00{doc_id}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CachedExtraction:
    """What a document's entry holds: its text as extracted from the original with this sha256, at `version`;
    `stored`: that original was in object storage (a hold the ledger keeps)."""

    sha256: str
    version: int
    stored: bool
    extraction: Extraction


def _dump(entry: CachedExtraction) -> bytes:
    blocks = [block.model_dump(mode="json") for block in entry.extraction.blocks]
    record = {"sha256": entry.sha256, "version": entry.version, "stored": entry.stored,
              "title": entry.extraction.title, "blocks": blocks}  # fmt: skip
    return zlib.compress(orjson.dumps(record), 1)


def _load(raw: bytes) -> CachedExtraction | None:
    try:
        record = orjson.loads(zlib.decompress(raw))
        extraction = Extraction(title=record["title"], blocks=[Block.model_validate(b) for b in record["blocks"]])
        return CachedExtraction(record["sha256"], int(record["version"]), bool(record["stored"]), extraction)
    except (zlib.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # an unreadable entry is a miss: the document is parsed again and the entry replaced


class ExtractionCache:
    """Reads and writes the entries of a batch's documents."""

    def __init__(self, redis: Redis, keys: KeySpace, ttl_s: int) -> None:
        self.redis, self.keys, self.ttl_s = redis, keys, ttl_s

    def _key(self, doc: DocKey) -> str:
        return self.keys.extraction(EXTRACTOR_VERSION, doc_hash(*doc))

    async def get_many(self, events: Sequence[DocumentEvent]) -> dict[DocKey, CachedExtraction]:
        """The entries of the documents of `events` that carry an original (no request when none does)."""
        docs = list(dict.fromkeys((e.tenant, e.doc_id) for e in events if e.original is not None))
        if not docs:
            return {}
        try:
            # One GET per key in a non-transactional pipeline, not MGET: on Redis Cluster the keys spread over
            # every slot, and the cluster pipeline sends each node its own keys.
            async with self.redis.pipeline(transaction=False) as pipe:
                for doc in docs:
                    pipe.get(self._key(doc))
                raw = await pipe.execute()
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc
        entries = {doc: _load(value) for doc, value in zip(docs, raw, strict=True) if value is not None}
        return {doc: entry for doc, entry in entries.items() if entry is not None}

    async def put_many(self, changes: Mapping[DocKey, CachedExtraction | None]) -> None:
        """Write each document's new entry; None removes it."""
        if not changes:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for doc, entry in changes.items():
                    if entry is None:
                        pipe.delete(self._key(doc))
                    else:
                        pipe.set(self._key(doc), _dump(entry), ex=self.ttl_s)
                await pipe.execute()
        except REDIS_DOWN as exc:
            raise TransientError(f"Redis unavailable: {exc}") from exc

    async def answers(self) -> bool:
        """Whether Redis answers a PING now."""
        return await redis_answers(self.redis)
