"""ExtractionCache: the text extracted from some bytes by some extractor version, kept in object storage.

Keyed by (sha256 of the original, EXTRACTOR_VERSION): a replay or a reindex with the same extractor parses no file
twice, and a new extractor version (a new library or a fix) re-extracts everything once.
"""

from __future__ import annotations

from ragbus.object_store import S3ObjectStore
from schemas.extracted import Block
from workers.extractor.formats.types import Extraction

# Bump when a format module's output changes: cached text of the previous version is then ignored.
EXTRACTOR_VERSION = "ragbus-extract-1"


def cache_key(sha256: str, version: str = EXTRACTOR_VERSION) -> str:
    """Object key of the cached extraction of the bytes with this hash."""
    return f"extracted/{version}/{sha256}.json"


class ExtractionCache:
    """Reads and writes cached extractions."""

    def __init__(self, store: S3ObjectStore) -> None:
        self.store = store

    def get(self, sha256: str) -> Extraction | None:
        """The cached extraction, or None."""
        record = self.store.get_json(cache_key(sha256))
        if not isinstance(record, dict):
            return None
        return Extraction(title=record["title"], blocks=[Block.model_validate(b) for b in record["blocks"]])

    def put(self, sha256: str, extraction: Extraction) -> None:
        """Keep an extraction."""
        blocks = [b.model_dump(mode="json") for b in extraction.blocks]
        self.store.put_json(cache_key(sha256), {"title": extraction.title, "blocks": blocks})

    def drop(self, sha256: str) -> None:
        """Forget the extraction of bytes that are no longer kept."""
        self.store.delete(cache_key(sha256))
