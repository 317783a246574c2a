"""QuestionCalls cuts a batch of questions into as many calls as it is allowed, as evenly as can be, in order."""

from __future__ import annotations

import pytest

from query_api.question_calls import split_evenly


@pytest.mark.parametrize(
    ("count", "parts", "sizes"),
    [(5, 4, [2, 1, 1, 1]), (9, 8, [2, 1, 1, 1, 1, 1, 1, 1]), (8, 2, [4, 4]), (3, 3, [1, 1, 1]), (1, 1, [1])],
)
def test_a_batch_is_cut_into_exactly_the_calls_allowed(count: int, parts: int, sizes: list[int]) -> None:
    questions = [f"q{i}" for i in range(count)]
    groups = split_evenly(questions, parts)
    assert [len(g) for g in groups] == sizes
    assert [q for g in groups for q in g] == questions
