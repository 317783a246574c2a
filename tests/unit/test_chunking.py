"""TokenChunker: token limits, overlap, unicode, empty and huge input, exact slices, stable ids."""

from __future__ import annotations

import random

import pytest

from ragbus.embedding import ModelTokenizer
from ragbus.errors import PermanentError
from ragbus.settings import ChunkingSettings, EmbeddingSettings
from schemas.chunks import chunk_id_for
from schemas.documents import DocumentEvent, DocumentOp
from workers.chunker.chunking import TokenChunker


@pytest.fixture(scope="module")
def tokenizer() -> ModelTokenizer:
    return ModelTokenizer.from_settings(EmbeddingSettings())


def chunker(tokenizer: ModelTokenizer, **overrides: int) -> TokenChunker:
    return TokenChunker(tokenizer, ChunkingSettings.model_validate(overrides))


def prose(words: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    vocab = [
        "the",
        "protein",
        "binds",
        "receptor",
        "cells",
        "mice",
        "increased",
        "expression",
        "levels",
        "tumour",
        "growth",
        "pathway",
        "signal",
    ]
    return " ".join(rng.choice(vocab) + ("." if rng.random() < 0.08 else "") for _ in range(words))


def test_every_chunk_fits_the_model_including_title(tokenizer: ModelTokenizer) -> None:
    event = DocumentEvent(doc_id="d", title="A rather long title " * 20, text=prose(3000))
    doc = chunker(tokenizer).chunk(event)
    assert len(doc.chunks) > 10
    assert doc.tokenizer == EmbeddingSettings().model  # the embedder of this model takes the counts as they are
    for chunk in doc.chunks:
        measured = tokenizer.count(doc.embedding_input(chunk))
        assert measured == chunk.token_count
        assert measured <= tokenizer.max_seq_length == 256


def test_chunks_are_exact_slices_with_overlap(tokenizer: ModelTokenizer) -> None:
    event = DocumentEvent(doc_id="d", text=prose(1200, seed=1))
    doc = chunker(tokenizer, tokens=100, overlap=20).chunk(event)
    for chunk in doc.chunks:
        assert event.text[chunk.start : chunk.end] == chunk.text
    for before, after in zip(doc.chunks, doc.chunks[1:], strict=False):
        assert after.start < before.end, "consecutive chunks must overlap"
        assert after.start > before.start
    covered = doc.chunks[-1].end
    assert covered == len(event.text.rstrip())


def test_chunk_size_follows_settings(tokenizer: ModelTokenizer) -> None:
    event = DocumentEvent(doc_id="d", text=prose(2000, seed=2))
    small = chunker(tokenizer, tokens=50, overlap=0).chunk(event)
    large = chunker(tokenizer, tokens=200, overlap=0).chunk(event)
    assert len(small.chunks) > 3 * len(large.chunks)
    assert max(c.token_count for c in small.chunks) <= 50 + tokenizer.special_tokens


def test_unicode_text_is_chunked_without_losing_characters(tokenizer: ModelTokenizer) -> None:
    text = "Ünïcödé façade — 日本語のテキスト、句読点。 🎉🚀 emoji, Ελληνικά, עברית, e\u0301 combining. " * 80
    event = DocumentEvent(doc_id="unicode-doc", title="Тест", text=text)
    doc = chunker(tokenizer, tokens=64, overlap=8).chunk(event)
    assert len(doc.chunks) > 5
    for chunk in doc.chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.token_count <= tokenizer.max_seq_length
    assert doc.chunks[0].start == 0
    assert doc.chunks[-1].end == len(text.rstrip())


def test_short_document_is_one_chunk(tokenizer: ModelTokenizer) -> None:
    doc = chunker(tokenizer).chunk(DocumentEvent(doc_id="d", title="T", text="Just one sentence."))
    assert [c.text for c in doc.chunks] == ["Just one sentence."]
    assert doc.embed_prefix == "T"


def test_text_without_tokens_is_refused(tokenizer: ModelTokenizer) -> None:
    with pytest.raises(PermanentError) as err:
        chunker(tokenizer).chunk(DocumentEvent(doc_id="d", text="\u200b\u200b"))
    assert err.value.code == "empty_document"


def test_huge_document_is_chunked_completely(tokenizer: ModelTokenizer) -> None:
    text = prose(120_000, seed=3)  # ~0.9 MB
    doc = chunker(tokenizer, max_document_chars=1_000_000).chunk(DocumentEvent(doc_id="huge", text=text))
    assert len(doc.chunks) > 500
    assert all(c.token_count <= 256 for c in doc.chunks)
    assert doc.chunks[-1].end == len(text)


def test_document_over_the_size_limit_is_refused(tokenizer: ModelTokenizer) -> None:
    with pytest.raises(PermanentError) as err:
        chunker(tokenizer, max_document_chars=1000).chunk(DocumentEvent(doc_id="d", text="word " * 500))
    assert err.value.code == "document_too_large"


def test_delete_has_no_chunks(tokenizer: ModelTokenizer) -> None:
    doc = chunker(tokenizer).chunk(DocumentEvent(doc_id="d", op=DocumentOp.DELETE))
    assert doc.op is DocumentOp.DELETE
    assert doc.chunks == []


def test_chunk_ids_are_deterministic_and_versioned(tokenizer: ModelTokenizer) -> None:
    event = DocumentEvent(doc_id="d", version=7, text=prose(600))
    first = [c.chunk_id for c in chunker(tokenizer).chunk(event).chunks]
    again = [c.chunk_id for c in chunker(tokenizer).chunk(event).chunks]
    assert first == again
    assert len(set(first)) == len(first)
    assert first[0] == chunk_id_for("default", "d", 7, 0)
    assert chunk_id_for("default", "d", 8, 0) != first[0]
    assert chunk_id_for("other", "d", 7, 0) != first[0]


@pytest.mark.parametrize("tokens", [64, 230, 254])
def test_without_overlap_consecutive_chunks_leave_no_gap(tokenizer: ModelTokenizer, tokens: int) -> None:
    text = prose(4000, seed=5) + " " + "Ünïcödé 日本語 🎉 " * 200
    event = DocumentEvent(doc_id="d", title="A title of several words " * 3, text=text)
    doc = chunker(tokenizer, tokens=tokens, overlap=0).chunk(event)
    assert doc.chunks[0].start == 0
    for before, after in zip(doc.chunks, doc.chunks[1:], strict=False):
        assert after.start >= before.end
        assert text[before.end : after.start].strip() == "", "no text may fall between two chunks"
    assert doc.chunks[-1].end == len(text.rstrip())
    assert all(c.token_count <= 256 for c in doc.chunks)
