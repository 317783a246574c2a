"""bench.ingest's raw reference: the model's calls sorted by tokens, and what padding each order costs."""

from __future__ import annotations

from bench.ingest import char_sorted_batches, padding, token_sorted_batches


def test_token_sorted_calls_pad_less_than_calls_sorted_by_characters() -> None:
    # Characters and tokens disagree: "!!!!" is 4 tokens in 4 characters, a long word 1 token in many.
    texts = ["!!!!!!!!", "supercalifragilistic", "!!!!!!!", "antidis"]
    lengths = [8, 1, 7, 1]
    assert token_sorted_batches(lengths, 2) == [[0, 2], [1, 3]]
    assert padding(lengths, token_sorted_batches(lengths, 2)) == (2 * 8 + 2 * 1) / 17 - 1
    by_chars = char_sorted_batches(texts, 2)
    assert by_chars == [[1, 0], [2, 3]]  # each call pairs a long input with a short one
    assert sorted(i for call in by_chars for i in call) == [0, 1, 2, 3]
    assert padding(lengths, by_chars) > padding(lengths, token_sorted_batches(lengths, 2))
    assert padding([3, 3, 3], token_sorted_batches([3, 3, 3], 2)) == 0
