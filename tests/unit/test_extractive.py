"""Extractive answers: whole sentences chosen for the question, never markup, each cited, nothing said twice;
citations in ranked order with the figure that ranked them."""

from __future__ import annotations

from dataclasses import replace

from query_api.extractive import NO_MATCH, extractive_answer, merge_overlapping
from query_api.markup import prose_blocks
from query_api.models import Citation
from query_api.sentences import split_sentences
from ragbus.milvus.rows import ChunkHit


def hit(n: int, text: str, *, doc: str | None = None, index: int = 0, score: float | None = None) -> ChunkHit:
    doc_id = doc or f"d{n}"
    return ChunkHit(f"{doc_id}#{index}", doc_id, 1, "default", f"T{doc_id}", text, index, "", score or 0.9 - n / 100)


def test_the_sentences_closest_to_the_question_are_quoted_whole_and_cited() -> None:
    hits = [
        hit(1, "Unrelated opening. Run the tests with make test. Another aside about nothing."),
        hit(2, "The indexer writes to Milvus."),
    ]
    answer = extractive_answer("How do I run the tests?", hits, passages=2, sentences=1)
    assert answer == "Run the tests with make test. [1]"
    assert extractive_answer("anything", [], passages=3) == NO_MATCH


def test_passages_far_below_the_best_are_left_out() -> None:
    best, weak = hit(1, "The koala eats eucalyptus leaves."), hit(2, "The koi eats pellets.")
    weak = replace(weak, score=best.score * 0.6)
    assert (
        extractive_answer("What does the koala eat?", [best, weak], passages=3)
        == "The koala eats eucalyptus leaves. [1]"
    )


def test_no_table_cell_fence_heading_or_list_marker_reaches_the_answer() -> None:
    passage = (
        "## Caching answers\n\n| setting | default |\n|---|---|\n| cache answers | 60 s |\n\n"
        "```\nredis-cli keys 'answers:*'   # cache answers listed\n```\n"
        "- The cache answers repeated questions from Redis.\n"
        "1. Cache answers expire after the TTL.\n"
    )
    answer = extractive_answer("How long does the cache keep answers?", [hit(1, passage)], passages=1)
    assert answer == "The cache answers repeated questions from Redis. [1] Cache answers expire after the TTL. [1]"


def test_a_passage_cut_inside_a_code_fence_keeps_the_code_out() -> None:
    # The chunker cut this passage in the middle of a fence: it opens with code and a closing fence.
    closing = "make run --cache answers\nredis-cli flushall\n```\n\nThe cache holds answers for a minute.\n"
    opening = "The cache holds answers until a document changes.\n\n```\nragbus query cache answers --now\n"
    for passage in (closing, opening):
        blocks = prose_blocks(passage)
        assert blocks and all("redis-cli" not in b and "ragbus query" not in b and "make run" not in b for b in blocks)


def test_sentences_cut_by_the_chunker_are_left_out() -> None:
    # A later chunk starts inside a sentence and ends inside another; only the whole one between is quoted.
    passage = "changes reach the cache late. The cache drops an answer when its document changes. When the"
    answer = extractive_answer("When does the cache drop an answer?", [hit(1, passage, index=3)], passages=1)
    assert answer == "The cache drops an answer when its document changes. [1]"


def test_overlapping_passages_of_one_document_are_merged_and_nothing_is_said_twice() -> None:
    text = (
        "The indexer bumps the cache generation after each write. It also emits a cache-invalidation event "
        "that the query API consumes to drop the cached answers citing the document."
    )
    first, second = text[:120], text[80:]  # consecutive chunks sharing 40 characters
    assert merge_overlapping(first, second) == text
    other = "The indexer bumps the cache generation after each write."  # the same sentence in another document
    hits = [
        hit(1, first, doc="arch.md", index=0),
        hit(2, second, doc="arch.md", index=1),
        hit(3, other, doc="ops.md", score=0.85),
    ]
    answer = extractive_answer("How does the cache generation and invalidation work?", hits, passages=3)
    assert answer.count("bumps the cache generation") == 1
    # The sentence the chunker cut in two is whole again; it cites the better ranked of the passages it spans.
    assert answer == (
        "The indexer bumps the cache generation after each write. [1] It also emits a cache-invalidation event "
        "that the query API consumes to drop the cached answers citing the document. [1]"
    )


def test_inline_code_and_abbreviations_do_not_end_a_sentence() -> None:
    text = "Dead letters go to `ragbus.dlq.<stage>.v1`, e.g. for bad JSON. Logs live in `.ragbus/logs`. Done."
    assert split_sentences(text) == [
        "Dead letters go to `ragbus.dlq.<stage>.v1`, e.g. for bad JSON.",
        "Logs live in `.ragbus/logs`.",
        "Done.",
    ]


def test_paths_and_topic_names_without_their_backticks_are_not_cut_at_their_dots() -> None:
    # Extracted Markdown has lost its backticks: the demo quoted "... a local S3 store under ." and cut
    # "Publish your own documents: .venv/bin/ragbus publish ..." after its colon.
    text = (
        "The embedded stack keeps it in a local S3 store under .ragbus/seaweedfs, so topics survive a restart; the "
        "Milvus data lives under .ragbus/milvus. Failures go to ragbus.dlq.<stage>.v1 (see docs/api.md). Publish "
        "your own documents: .venv/bin/ragbus publish notes.md --wait. It took 3.5 s, e.g. in the U.S. today."
    )
    assert split_sentences(text) == [
        "The embedded stack keeps it in a local S3 store under .ragbus/seaweedfs, so topics survive a restart; the "
        "Milvus data lives under .ragbus/milvus.",
        "Failures go to ragbus.dlq.<stage>.v1 (see docs/api.md).",
        "Publish your own documents: .venv/bin/ragbus publish notes.md --wait.",
        "It took 3.5 s, e.g. in the U.S. today.",
    ]


def test_citations_carry_their_rank_and_the_figure_that_ranked_them() -> None:
    # Hybrid retrieval orders by the fused score; the cosine need not fall down the list.
    hits = [
        replace(hit(1, "a"), score=0.49, fused=0.0325),
        replace(hit(2, "b"), score=0.56, fused=0.0164),
        replace(hit(3, "c"), score=0.31, fused=0.0161),
    ]
    citations = Citation.ranked(hits)
    assert [c.rank for c in citations] == [1, 2, 3]
    assert [c.score for c in citations] == [0.0325, 0.0164, 0.0161]
    assert [c.similarity for c in citations] == [0.49, 0.56, 0.31]
    dense = Citation.ranked([hit(1, "a", score=0.6), hit(2, "b", score=0.5)])
    assert [(c.rank, c.score, c.similarity) for c in dense] == [(1, 0.6, 0.6), (2, 0.5, 0.5)]


def test_a_passage_that_starts_a_paragraph_keeps_its_first_sentence_and_a_cut_one_loses_it() -> None:
    # The chunker packs whole blocks, so a later chunk mostly begins where a paragraph does; only a window of a
    # paragraph too long for one chunk begins inside a sentence (here before a lowercase word).
    whole = hit(1, "The embedder caches embeddings in Redis by model and content hash.", index=8)
    assert extractive_answer("What does the embedder cache?", [whole], passages=1) == f"{whole.text} [1]"
    cut = hit(1, "embeddings in Redis by model. The embedder batches chunks before it embeds them.", index=8)
    assert extractive_answer("What does the embedder cache?", [cut], passages=1) == (
        "The embedder batches chunks before it embeds them. [1]"
    )


def test_when_the_best_passages_hold_no_sentence_the_others_are_read_and_no_match_is_only_for_no_passage() -> None:
    # Structured text as the extractor renders a table: one row a line, "header: cell; header: cell".
    table = hit(1, "command: ragbus status; does: topics, consumer lag per stage\ncommand: ragbus api; does: run it")
    prose = replace(hit(2, "The status command shows the consumer lag of every stage."), score=table.score * 0.5)
    assert extractive_answer("What does ragbus status show?", [table, prose], passages=1) == (
        "The status command shows the consumer lag of every stage. [2]"
    )
    answer = extractive_answer("What does ragbus status show?", [table], passages=1)
    assert answer != NO_MATCH and answer.endswith(" [1]") and "|" not in answer and ";" not in answer


def test_the_extractors_structured_text_gives_its_paragraphs_and_list_items_but_no_table_row() -> None:
    structured = (
        "Settings of the extractor:\n"
        "variable: RAGBUS_EXTRACT_MAX_BYTES; default: 52428800; meaning: Largest original read.\n"
        "Exactly one reader. Run one process per source.\n"
        "Nothing lost. A source acknowledges its input after the broker confirmed it.\n"
        "The embedder caches embeddings."
    )
    assert prose_blocks(structured) == [
        "Settings of the extractor:",
        "Exactly one reader. Run one process per source.",
        "Nothing lost. A source acknowledges its input after the broker confirmed it.",
        "The embedder caches embeddings.",
    ]
