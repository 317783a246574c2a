"""TokenChunker: passages of the embedding model's own tokens that follow the document's structure.

Blocks of one section (and one PDF page) are packed into a chunk while they fit; a heading starts a new section,
whose path goes before every chunk of it in the embedding input. A table, code block or list too long for one
chunk is cut between its lines (a table row is one line), never inside one unless that one line alone is too long;
a long paragraph is cut into overlapping token windows. Every chunk fits the model exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragbus.embedding import ModelTokenizer
from ragbus.errors import PermanentError
from ragbus.settings import ChunkingSettings
from schemas.chunks import Chunk, ChunkedDocument, DocumentHeader, chunk_id_for, embedding_input
from schemas.documents import DocumentEvent, DocumentOp
from schemas.extracted import Block, BlockKind, ExtractedDocument, plain_text_document

# Milvus VARCHAR limit of the stored passage, with room to spare.
MAX_CHUNK_BYTES = 60_000
SECTION_SEPARATOR = " > "
_BLOCK_SEPARATOR = "\n\n"
_LINE_KINDS = {BlockKind.TABLE, BlockKind.CODE, BlockKind.LIST}


@dataclass(frozen=True)
class _Span:
    """A block's place in the document text."""

    block: Block
    start: int
    end: int


@dataclass(frozen=True)
class _Unit:
    """Consecutive blocks of one section and page, and the context every chunk of them is embedded with."""

    spans: list[_Span]
    section: str | None
    page: int | None
    context: str  # title prefix and section, as embedding_input puts them before the passage


class TokenChunker:
    """Cuts documents into passages measured in model tokens; each embedding input fits the model exactly."""

    def __init__(self, tokenizer: ModelTokenizer, settings: ChunkingSettings) -> None:
        self.tokenizer = tokenizer
        self.settings = settings

    def title_prefix(self, title: str) -> str:
        """At most `title_tokens` tokens of the title, cut at a token boundary (the full title is kept)."""
        if not title.strip() or self.settings.title_tokens == 0:
            return ""
        offsets, _ = self.tokenizer.encode_offsets(title)
        if not offsets:
            return ""
        kept = offsets[: self.settings.title_tokens]
        return title[kept[0][0] : kept[-1][1]]

    def chunk(self, doc: ExtractedDocument | DocumentEvent) -> ChunkedDocument:
        """The ChunkedDocument of an extracted document (a plain-text event is one block; a delete has no chunks)."""
        if isinstance(doc, DocumentEvent):
            doc = plain_text_document(doc)
        header = doc.model_dump(include=set(DocumentHeader.model_fields))
        if doc.op is DocumentOp.DELETE:
            return ChunkedDocument(**header)
        text, spans = _layout(doc.blocks)
        if len(text) > self.settings.max_document_chars:
            raise PermanentError(
                f"document {doc.doc_id!r} has {len(text)} characters, over RAGBUS_CHUNK_MAX_DOCUMENT_CHARS="
                f"{self.settings.max_document_chars}",
                code="document_too_large",
            )
        prefix = self.title_prefix(doc.title)
        chunks: list[Chunk] = []
        for unit in self._units(spans, prefix):
            self._chunk_unit(doc, text, unit, chunks)
        if not chunks:
            raise PermanentError(f"document {doc.doc_id!r} has no indexable text", code="empty_document")
        return ChunkedDocument(**header, embed_prefix=prefix, tokenizer=self.tokenizer.model, chunks=chunks)

    def _units(self, spans: list[_Span], prefix: str) -> list[_Unit]:
        units: list[_Unit] = []
        for span in spans:
            section = SECTION_SEPARATOR.join(span.block.section) or None
            last = units[-1] if units else None
            same_place = last and last.section == section and last.page == span.block.page
            if last and same_place and span.block.kind is not BlockKind.HEADING:
                last.spans.append(span)
                continue
            context = embedding_input(prefix, section, "")
            units.append(_Unit([span], section, span.block.page, context))
        return units

    def _tokens(self, text: str) -> int:
        return self.tokenizer.count(text) - self.tokenizer.special_tokens

    def _budget(self, context: str) -> int:
        context_tokens = self._tokens(context) + 1 if context else 0
        room = self.tokenizer.max_seq_length - self.tokenizer.special_tokens - context_tokens
        return max(1, min(self.settings.tokens, room))

    def _chunk_unit(self, doc: ExtractedDocument, text: str, unit: _Unit, chunks: list[Chunk]) -> None:
        budget = self._budget(unit.context)
        pack: list[tuple[int, int]] = []
        pack_tokens = 0

        def flush() -> None:
            nonlocal pack, pack_tokens
            if pack:
                self._span_chunks(doc, text, unit, (pack[0][0], pack[-1][1]), chunks)
            pack, pack_tokens = [], 0

        for span in unit.spans:
            pieces = self._pieces(text, span, budget)
            if len(pieces) > 1:  # a table, code block or list cut between its lines starts a chunk of its own
                flush()
            for piece in pieces:
                tokens = self._tokens(text[piece[0] : piece[1]])
                if tokens == 0:  # nothing the model reads (zero-width characters, ...)
                    continue
                if pack and pack_tokens + tokens + 1 > budget:
                    flush()
                if tokens > budget:
                    self._window_chunks(doc, text, unit, piece, chunks)
                    continue
                pack.append(piece)
                pack_tokens += tokens + 1
            if len(pieces) > 1:
                flush()
        flush()

    def _pieces(self, text: str, span: _Span, budget: int) -> list[tuple[int, int]]:
        """The block whole when it fits; a too-long table, code block or list as its lines."""
        if span.block.kind not in _LINE_KINDS or self._tokens(text[span.start : span.end]) <= budget:
            return [(span.start, span.end)]
        pieces, offset = [], span.start
        for line in text[span.start : span.end].split("\n"):
            if line.strip():
                pieces.append((offset, offset + len(line)))
            offset += len(line) + 1
        return pieces

    def _span_chunks(
        self, doc: ExtractedDocument, text: str, unit: _Unit, span: tuple[int, int], chunks: list[Chunk]
    ) -> None:
        passage = text[span[0] : span[1]]
        count = self.tokenizer.count(embedding_input(unit.context, None, passage))
        if count <= self.tokenizer.max_seq_length:
            chunks.append(self._chunk(doc, unit, span, passage=passage, count=count, index=len(chunks)))
        else:  # re-tokenizing a pack can come out a little longer than its parts: fall back to windows
            self._window_chunks(doc, text, unit, span, chunks)

    def _chunk(
        self, doc: ExtractedDocument, unit: _Unit, span: tuple[int, int], *, passage: str, count: int, index: int
    ) -> Chunk:
        if len(passage.encode()) > MAX_CHUNK_BYTES:
            raise PermanentError(
                f"document {doc.doc_id!r}: {count} tokens span {len(passage.encode())} bytes at characters "
                f"{span[0]}-{span[1]}, over the {MAX_CHUNK_BYTES}-byte limit of a stored passage",
                code="unchunkable",
            )
        return Chunk(
            chunk_id=chunk_id_for(doc.tenant, doc.doc_id, doc.version, index),
            index=index,
            text=passage,
            start=span[0],
            end=span[1],
            token_count=count,
            section=unit.section,
            page=unit.page,
        )

    def _window_chunks(
        self, doc: ExtractedDocument, text: str, unit: _Unit, span: tuple[int, int], chunks: list[Chunk]
    ) -> None:
        """Overlapping token windows over text[span], each shrunk until the model takes it whole."""
        offsets, word_ids = self.tokenizer.encode_offsets(text[span[0] : span[1]])
        offsets = [(a + span[0], b + span[0]) for a, b in offsets]
        n = len(offsets)
        budget = self._budget(unit.context)
        overlap = min(self.settings.overlap, budget - 1)
        start = 0
        while start < n:
            end = min(start + budget, n)
            # Don't split a word across chunks when a word boundary is reasonably close.
            floor = start + max(1, budget // 2)
            while end < n and end > floor and _same_word(word_ids, end):
                end -= 1
            end = self._fitting_window(doc, text, unit, offsets, (start, end), chunks=chunks)
            if end >= n:
                break
            # The next window starts from where this chunk really ended, so no token is ever skipped.
            next_start = max(end - overlap, start + 1)
            while next_start > start + 1 and _same_word(word_ids, next_start):
                next_start -= 1
            start = next_start

    def _fitting_window(
        self,
        doc: ExtractedDocument,
        text: str,
        unit: _Unit,
        offsets: list[tuple[int, int]],
        window: tuple[int, int],
        *,
        chunks: list[Chunk],
    ) -> int:
        """Append the chunk of tokens [start, end), shrunk until the model takes it whole; returns the end used."""
        start, end = window
        while True:
            first, last = offsets[start][0], offsets[end - 1][1]
            passage = text[first:last]
            count = self.tokenizer.count(embedding_input(unit.context, None, passage))
            if count <= self.tokenizer.max_seq_length:
                chunks.append(self._chunk(doc, unit, (first, last), passage=passage, count=count, index=len(chunks)))
                return end
            if end - start <= 1:
                raise PermanentError(
                    f"document {doc.doc_id!r}: one token at characters {first}-{last} does not fit the model",
                    code="unchunkable",
                )
            # Re-tokenizing a slice can differ from the whole-text tokens at the edges: shrink and re-measure.
            end -= max(1, count - self.tokenizer.max_seq_length)


def _layout(blocks: list[Block]) -> tuple[str, list[_Span]]:
    """The document text (blocks separated by a blank line) and where each block sits in it."""
    parts: list[str] = []
    spans: list[_Span] = []
    offset = 0
    for block in blocks:
        if not block.text.strip():
            continue
        if parts:
            parts.append(_BLOCK_SEPARATOR)
            offset += len(_BLOCK_SEPARATOR)
        parts.append(block.text)
        spans.append(_Span(block, offset, offset + len(block.text)))
        offset += len(block.text)
    return "".join(parts), spans


def _same_word(word_ids: list[int | None], i: int) -> bool:
    return word_ids[i] is not None and word_ids[i] == word_ids[i - 1]
