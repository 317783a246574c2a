"""TokenChunker: windows of the embedding model's own tokens, with overlap, never over its limit."""

from __future__ import annotations

from ragbus.embedding import ModelTokenizer
from ragbus.errors import PermanentError
from ragbus.settings import ChunkingSettings
from schemas.chunks import Chunk, ChunkedDocument, chunk_id_for
from schemas.documents import DocumentEvent, DocumentOp

# Milvus VARCHAR limit of the stored passage, with room to spare.
MAX_CHUNK_BYTES = 60_000


class TokenChunker:
    """Cuts text into passages measured in model tokens; each embedding input fits the model exactly."""

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

    def chunk(self, event: DocumentEvent) -> ChunkedDocument:
        """The ChunkedDocument for a document event (a delete yields no chunks)."""
        header = {
            "event_id": event.event_id,
            "op": event.op,
            "doc_id": event.doc_id,
            "version": event.version,
            "tenant": event.tenant,
            "title": event.title,
            "metadata": event.metadata,
            "source": event.source,
            "produced_at": event.produced_at,
        }
        if event.op is DocumentOp.DELETE:
            return ChunkedDocument(**header)
        if len(event.text) > self.settings.max_document_chars:
            raise PermanentError(
                f"document {event.doc_id!r} has {len(event.text)} characters, over RAGBUS_CHUNK_MAX_DOCUMENT_CHARS="
                f"{self.settings.max_document_chars}",
                code="document_too_large",
            )
        prefix = self.title_prefix(event.title)
        chunks = self._chunks(event, prefix)
        if not chunks:
            raise PermanentError(f"document {event.doc_id!r} has no indexable text", code="empty_document")
        return ChunkedDocument(**header, embed_prefix=prefix, tokenizer=self.tokenizer.model, chunks=chunks)

    def _budget(self, prefix: str) -> int:
        prefix_tokens = self.tokenizer.count(prefix) - self.tokenizer.special_tokens if prefix else 0
        room = self.tokenizer.max_seq_length - self.tokenizer.special_tokens - prefix_tokens
        return max(1, min(self.settings.tokens, room))

    def _chunks(self, event: DocumentEvent, prefix: str) -> list[Chunk]:
        offsets, word_ids = self.tokenizer.encode_offsets(event.text)
        n = len(offsets)
        budget = self._budget(prefix)
        overlap = min(self.settings.overlap, budget - 1)
        chunks: list[Chunk] = []
        start = 0
        while start < n:
            end = min(start + budget, n)
            # Don't split a word across chunks when a word boundary is reasonably close.
            floor = start + max(1, budget // 2)
            while end < n and end > floor and _same_word(word_ids, end):
                end -= 1
            chunk, end = self._fitting_chunk(event, prefix, offsets, (start, end), len(chunks))
            chunks.append(chunk)
            if end >= n:
                break
            # The next window starts from where this chunk really ended, so no token is ever skipped.
            next_start = max(end - overlap, start + 1)
            while next_start > start + 1 and _same_word(word_ids, next_start):
                next_start -= 1
            start = next_start
        return chunks

    def _fitting_chunk(
        self,
        event: DocumentEvent,
        prefix: str,
        offsets: list[tuple[int, int]],
        span: tuple[int, int],
        index: int,
    ) -> tuple[Chunk, int]:
        """The chunk of tokens [start, end), shrunk until the model takes it whole; and the end it used."""
        start, end = span
        while True:
            first, last = offsets[start][0], offsets[end - 1][1]
            passage = event.text[first:last]
            embed_input = f"{prefix}\n{passage}" if prefix else passage
            count = self.tokenizer.count(embed_input)
            if count <= self.tokenizer.max_seq_length:
                if len(passage.encode()) > MAX_CHUNK_BYTES:
                    raise PermanentError(
                        f"document {event.doc_id!r}: {count} tokens span {len(passage.encode())} bytes at characters "
                        f"{first}-{last}, over the {MAX_CHUNK_BYTES}-byte limit of a stored passage",
                        code="unchunkable",
                    )
                chunk = Chunk(
                    chunk_id=chunk_id_for(event.tenant, event.doc_id, event.version, index),
                    index=index,
                    text=passage,
                    start=first,
                    end=last,
                    token_count=count,
                )
                return chunk, end
            if end - start <= 1:
                raise PermanentError(
                    f"document {event.doc_id!r}: one token at characters {first}-{last} does not fit the model",
                    code="unchunkable",
                )
            # Re-tokenizing a slice can differ from the whole-text tokens at the edges: shrink and re-measure.
            end -= max(1, count - self.tokenizer.max_seq_length)


def _same_word(word_ids: list[int | None], i: int) -> bool:
    return word_ids[i] is not None and word_ids[i] == word_ids[i - 1]
