"""The benchmark's measure of an answer's support by the passages it cites (bench/answer_support.py)."""

from __future__ import annotations

from bench.answer_support import abstains, answer_support, facts_held

PASSAGES = [
    ("docs/ops.md", "Workers retry with exponential backoff while Milvus is unreachable: nothing is dropped."),
    ("docs/api.md", "The query API answers POST /v1/query with citations."),
    ("docs/ops.md", "A restarted worker resumes from its committed offsets."),
]


def test_quoted_sentences_are_supported_by_the_documents_they_cite() -> None:
    answer = (
        "Workers retry with exponential backoff while Milvus is unreachable. [1] "
        "A restarted worker resumes from its committed offsets. [1]"  # in passage 3, of the cited document
    )
    assert answer_support(answer, PASSAGES) == {"sentences": 2, "supported": 2, "support": 1.0}


def test_an_invented_sentence_or_a_wrong_citation_is_not_supported() -> None:
    invented = "Workers retry with exponential backoff [1]. The enterprise licence costs ten dollars per seat [1]."
    assert answer_support(invented, PASSAGES)["supported"] == 1
    wrong = "The query API answers POST /v1/query with citations [1]."  # the words are in passage 2, not 1
    assert answer_support(wrong, PASSAGES)["supported"] == 0


def test_facts_and_abstention() -> None:
    assert (
        facts_held("Use ragbus reindex; the alias moves.", [["ragbus reindex"], ["alias", "collection"], ["rollback"]])
        == 2
    )
    assert abstains("I don’t know: the sources do not say.")
    assert not abstains("Workers retry.")
