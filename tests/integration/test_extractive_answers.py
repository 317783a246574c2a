"""Extractive answers over the repository's own docs (what `ragbus up --demo` publishes): whole sentences chosen
for the question, no Markdown markup, each cited; citations in ranked order with the figure that ranked them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from producers.sources.files import read_documents
from query_api.app import create_app
from query_api.extractive import is_whole
from query_api.sentences import split_sentences
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = json.loads((ROOT / "tests" / "data" / "docs_questions.json").read_text())["questions"]
DEMO_QUESTION = "How does ragbus keep answers fresh when a document changes?"
_MARKER = re.compile(r"\s*\[(\d+)\]")


@pytest.fixture(scope="module")
def docs_pipeline(base_servers: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    """A deployment holding the README and docs/, as the demo publishes them."""
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    with running_pipeline(env, stack_home) as pipeline:
        events = read_documents([ROOT / "README.md", ROOT / "docs"], tenant="default")
        wait_indexed(pipeline, dict(publish(pipeline, events)), timeout_s=600)
        yield pipeline


@pytest.fixture(scope="module")
def docs_api(docs_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(docs_pipeline.settings)) as client:
        yield client


def ask(api: TestClient, question: str, top_k: int = 5) -> dict[str, object]:
    response = api.post("/v1/query", json={"query": question, "top_k": top_k})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def cited_sentences(answer: str) -> list[tuple[str, int]]:
    """(sentence, n) for every sentence of an extractive answer, each followed by its [n]."""
    pieces = _MARKER.split(answer.strip())
    assert pieces[-1].strip() == "", f"text after the last citation: {answer!r}"
    return [(text.strip(), int(n)) for text, n in zip(pieces[0:-1:2], pieces[1::2], strict=True)]


def test_the_demo_question_is_answered_in_whole_sentences_that_say_how_a_change_reaches_the_cache(
    docs_api: TestClient,
) -> None:
    body = ask(docs_api, DEMO_QUESTION)
    answer = str(body["answer"])
    citations: list[dict[str, object]] = body["citations"]  # type: ignore[assignment]
    quoted = cited_sentences(answer)
    assert quoted, answer
    for sentence, n in quoted:
        assert 1 <= n <= len(citations)
        for part in split_sentences(sentence):
            assert is_whole(part), (part, answer)
        # Each sentence is quoted from its cited document's retrieved passages (one sentence may span two that
        # overlap; it cites the better ranked).
        doc_id = citations[n - 1]["doc_id"]
        passages = " ".join(str(c["text"]) for c in citations if c["doc_id"] == doc_id)
        assert _words(sentence) <= _words(passages), (sentence, n)
    assert len({s for s, _ in quoted}) == len(quoted), answer  # nothing repeated
    text = answer.casefold()
    # How a change reaches the cache, as docs/architecture.md says it: the indexer's cache-invalidation event,
    # consumed by the API, drops the answers citing the document / moves the tenant's generation on.
    assert "invalidation" in text, answer
    assert any(word in text for word in ("generation", "drops", "drop", "stale")), answer


def test_no_answer_of_the_docs_question_set_carries_markup_and_most_facts_are_there(docs_api: TestClient) -> None:
    held, total, misses = 0, 0, []
    for item in QUESTIONS:
        answer = str(ask(docs_api, item["question"])["answer"])
        assert "|" not in answer and "```" not in answer and "~~~" not in answer, (item["question"], answer)
        assert not re.search(r"(^|\n)\s*(#{1,6}\s|[-*+]\s)", answer), (item["question"], answer)
        assert cited_sentences(answer), answer
        for fact in item["facts"]:
            total += 1
            if any(alternative in answer.casefold() for alternative in fact):
                held += 1
            else:
                misses.append((item["question"], fact[0]))
    # Measured 32 of 41 (0.78) when written; as docs/ grew it drifted to 23 to 24 of 41 (6 Dec), most of the loss a
    # sentence splitter that cut paths and topic names whose backticks extraction had removed ("... store under ."):
    # 27 of 41 once they stay whole (6 Dec 20:50). Facts kept in tables still cannot be quoted.
    assert held / total >= 0.6, (held, total, misses)


def test_citations_are_listed_in_ranked_order_with_the_figure_that_ranked_them(docs_api: TestClient) -> None:
    for question in (DEMO_QUESTION, "Which Kafka topics does ragbus use?", "How do I roll back a reindex?"):
        whole = ask(docs_api, question)
        citations: list[dict[str, float]] = whole["citations"]  # type: ignore[assignment]
        assert [c["rank"] for c in citations] == list(range(1, len(citations) + 1))
        scores = [c["score"] for c in citations]
        assert scores == sorted(scores, reverse=True), citations
        with docs_api.stream("POST", "/v1/query", json={"query": question, "top_k": 5, "stream": True}) as response:
            events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
        streamed = next(e["citations"] for e in events if "citations" in e)
        assert [(c["chunk_id"], c["rank"], c["score"]) for c in streamed] == [
            (c["chunk_id"], c["rank"], c["score"]) for c in citations
        ]


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def test_the_question_ragbus_up_suggests_is_answered_from_the_docs(docs_api: TestClient) -> None:
    from ragbus.cli.app import DEMO_QUESTION as SUGGESTED

    body = ask(docs_api, SUGGESTED, top_k=3)  # as the printed curl command asks it
    assert "make test" in str(body["answer"]), body["answer"]
