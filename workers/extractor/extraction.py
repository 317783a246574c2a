"""DocumentExtractor: one document event in, its ExtractedDocument out (plain functions, no Kafka)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from ragbus.errors import PermanentError, RagbusError, UnreadableDocument
from ragbus.object_store import S3ObjectStore
from schemas.documents import DocumentEvent, DocumentOp
from schemas.extracted import ExtractedDocument, header_of, plain_text_document
from workers.extractor import formats
from workers.extractor.cache import EXTRACTOR_VERSION, CachedExtraction
from workers.extractor.formats.types import Extraction
from workers.extractor.originals import OriginalLedger


@dataclass(frozen=True)
class Outcome:
    """What became of one event: its output (None when superseded), how (a label of EXTRACTIONS), and the text
    extracted from its original (parsed, or reused from the cache), which the cache keeps."""

    document: ExtractedDocument | None
    how: str
    extraction: Extraction | None = None


class DocumentExtractor:
    """Turns document events into structured text; originals are inline or in object storage (`store`, when set).

    `cached` (the document's cache entry, ExtractionCache) gives the text of an original already extracted."""

    def __init__(self, store: S3ObjectStore | None, max_bytes: int) -> None:
        self.store, self.max_bytes = store, max_bytes
        self.ledger = OriginalLedger(store) if store else None

    def store_answers(self) -> bool:
        """Whether the object store answers a cheap request (True when none is configured)."""
        if self.store is None:
            return True
        try:
            self.store.ensure_bucket()
        except RagbusError:
            return False
        return True

    def extract(self, event: DocumentEvent, cached: CachedExtraction | None = None) -> Outcome:
        """The event's ExtractedDocument; UnreadableDocument (permanent) says why a document has no text."""
        if event.op is DocumentOp.DELETE:
            if self.ledger is not None:
                self.ledger.record(event.tenant, event.doc_id, event.version, None)
            return Outcome(self._document(event, Extraction("", [])), "delete")
        if event.original is None:
            if event.media_type == "text/plain":  # the common case passes without parsing
                return Outcome(plain_text_document(event, EXTRACTOR_VERSION), "inline")
            return Outcome(self._document(event, formats.extract(event.media_type, event.text.encode())), "inline")
        return self._from_original(event, cached)

    def _from_original(self, event: DocumentEvent, cached: CachedExtraction | None) -> Outcome:
        original = event.original
        assert original is not None
        if original.size == 0:
            raise UnreadableDocument(f"document {event.doc_id!r}: the file is empty (0 bytes)", code="empty_file")
        if original.size > self.max_bytes:
            raise UnreadableDocument(
                f"document {event.doc_id!r}: {original.size} bytes, over RAGBUS_EXTRACT_MAX_BYTES={self.max_bytes}",
                code="too_large",
            )
        if original.data is not None:
            if cached is not None and cached.stored and self.ledger is not None:
                # The document held a stored original until now: release it (the ledger takes its turn).
                self.ledger.record(event.tenant, event.doc_id, event.version, None)
            return self._parsed(event, cached, lambda: original.data or b"")
        if self.store is None or self.ledger is None:
            raise PermanentError(
                f"document {event.doc_id!r} has a stored original but RAGBUS_OBJECTS_URL is not set for the extractor",
                code="objects_not_configured",
            )
        store = self.store
        stale = not self.ledger.record(event.tenant, event.doc_id, event.version, original.sha256)
        try:
            return self._parsed(event, cached, lambda: store.get(original.key))
        except PermanentError as exc:
            if exc.code == "original_missing" and stale:
                return Outcome(None, "superseded")  # a later event of this document follows in the log
            raise

    def _parsed(self, event: DocumentEvent, cached: CachedExtraction | None, read: Callable[[], bytes]) -> Outcome:
        """The cached text when it is of these very bytes, else the original read and parsed."""
        assert event.original is not None
        if cached is not None and cached.sha256 == event.original.sha256:
            return Outcome(self._document(event, cached.extraction), "cache_hit", cached.extraction)
        extraction = formats.extract(event.media_type, read())
        return Outcome(self._document(event, extraction), "extracted", extraction)

    def _document(self, event: DocumentEvent, extraction: Extraction) -> ExtractedDocument:
        header = header_of(event)
        if event.op is DocumentOp.UPSERT:
            if not any(block.text.strip() for block in extraction.blocks):
                raise UnreadableDocument(f"document {event.doc_id!r} has no text", code="no_text")
            fallback = PurePath(event.source).stem if event.source else event.doc_id
            header["title"] = (event.title or extraction.title or fallback)[:1000]
        return ExtractedDocument(
            **header,
            media_type=event.media_type,
            content_sha256=event.original.sha256 if event.original else None,
            extractor=EXTRACTOR_VERSION,
            blocks=extraction.blocks,
        )
