"""DocumentExtractor: one document event in, its ExtractedDocument out (plain functions, no Kafka)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from ragbus.errors import PermanentError, RagbusError, UnreadableDocument
from ragbus.object_store import S3ObjectStore
from schemas.documents import DocumentEvent, DocumentOp
from schemas.extracted import ExtractedDocument, header_of, plain_text_document
from workers.extractor import formats
from workers.extractor.cache import EXTRACTOR_VERSION, ExtractionCache
from workers.extractor.formats.types import Extraction
from workers.extractor.originals import OriginalLedger


@dataclass(frozen=True)
class Outcome:
    """What became of one event: its output (None when superseded) and how (a label of EXTRACTIONS)."""

    document: ExtractedDocument | None
    how: str


class DocumentExtractor:
    """Turns document events into structured text; originals come from object storage (`store`), when set."""

    def __init__(self, store: S3ObjectStore | None, max_bytes: int) -> None:
        self.store, self.max_bytes = store, max_bytes
        self.cache = ExtractionCache(store) if store else None
        self.ledger = OriginalLedger(store, self.cache) if store and self.cache else None

    def store_answers(self) -> bool:
        """Whether the object store answers a cheap request (True when none is configured)."""
        if self.store is None:
            return True
        try:
            self.store.ensure_bucket()
        except RagbusError:
            return False
        return True

    def extract(self, event: DocumentEvent) -> Outcome:
        """The event's ExtractedDocument; UnreadableDocument (permanent) says why a document has no text."""
        if event.op is DocumentOp.DELETE:
            if self.ledger is not None:
                self.ledger.record(event.tenant, event.doc_id, event.version, None)
            return Outcome(self._document(event, Extraction("", [])), "delete")
        if event.original is None:
            if event.media_type == "text/plain":  # the common case passes without parsing
                return Outcome(plain_text_document(event, EXTRACTOR_VERSION), "inline")
            return Outcome(self._document(event, formats.extract(event.media_type, event.text.encode())), "inline")
        return self._from_original(event)

    def _from_original(self, event: DocumentEvent) -> Outcome:
        original = event.original
        assert original is not None
        if self.store is None or self.cache is None or self.ledger is None:
            raise PermanentError(
                f"document {event.doc_id!r} has an original but RAGBUS_OBJECTS_URL is not set for the extractor",
                code="objects_not_configured",
            )
        if original.size == 0:
            raise UnreadableDocument(f"document {event.doc_id!r}: the file is empty (0 bytes)", code="empty_file")
        if original.size > self.max_bytes:
            raise UnreadableDocument(
                f"document {event.doc_id!r}: {original.size} bytes, over RAGBUS_EXTRACT_MAX_BYTES={self.max_bytes}",
                code="too_large",
            )
        stale = not self.ledger.record(event.tenant, event.doc_id, event.version, original.sha256)
        cached = self.cache.get(original.sha256)
        if cached is not None:
            return Outcome(self._document(event, cached), "cache_hit")
        try:
            data = self.store.get(original.key)
        except PermanentError as exc:
            if exc.code == "original_missing" and stale:
                return Outcome(None, "superseded")  # a later event of this document follows in the log
            raise
        extraction = formats.extract(event.media_type, data)
        self.cache.put(original.sha256, extraction)
        return Outcome(self._document(event, extraction), "extracted")

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
