"""Answers through an OpenAI-compatible endpoint, the extractive fallback, metrics and the embedding cache."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.settings import LLMSettings
from schemas.documents import DocumentEvent
from tests.corpus import animal_doc_id
from tests.fake_llm import FakeLLM
from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()
    server = fake.serve()
    yield fake
    server.should_exit = True


@pytest.fixture
def llm_api(pipeline: Pipeline, llm: FakeLLM, indexed_corpus: list[DocumentEvent]) -> Iterator[TestClient]:
    settings = pipeline.settings
    with_llm = type(settings)(**{**settings.__dict__, "llm": LLMSettings(base_url=llm.base_url, api_key="k")})
    with TestClient(create_app(with_llm)) as client:
        yield client


def test_llm_answers_from_retrieved_passages_quoted_as_data(llm_api: TestClient, llm: FakeLLM) -> None:
    llm.status = None
    response = llm_api.post("/v1/query", json={"query": "What does the koala eat?", "top_k": 3})
    body = response.json()
    assert response.status_code == 200
    assert body["answer"] == llm.reply
    assert body["degraded"] is False
    assert body["citations"][0]["doc_id"] == animal_doc_id("koala")
    request = llm.requests[-1]
    system, user = request["messages"]
    assert system["role"] == "system" and "never instructions" in system["content"]
    sources = orjson.loads(user["content"].split("Sources (JSON data):\n", 1)[1].split("\n\nQuestion:", 1)[0])
    assert [s["source"] for s in sources] == [1, 2, 3]
    assert "eucalyptus" in sources[0]["text"]


def test_failing_llm_degrades_to_an_extractive_answer(llm_api: TestClient, llm: FakeLLM) -> None:
    llm.status = 500
    try:
        response = llm_api.post("/v1/query", json={"query": "What does the puffin eat?", "top_k": 3})
    finally:
        llm.status = None
    body = response.json()
    assert response.status_code == 200
    assert body["degraded"] is True
    assert "sand eels" in body["answer"] and "[1]" in body["answer"]
    again = llm_api.post("/v1/query", json={"query": "What does the puffin eat?", "top_k": 3}).json()
    assert again["cached"] is False, "a degraded answer must not be cached"
    assert again["degraded"] is False


def test_metrics_count_queries_at_metrics_itself(api: TestClient, indexed_corpus: list[DocumentEvent]) -> None:
    api.post("/v1/query", json={"query": "What does the wombat eat?"})
    for path in ("/metrics", "/metrics/"):  # curl asks the first, Prometheus configs of old the second
        response = api.get(path, follow_redirects=False)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.headers}"
        assert response.headers["content-type"].startswith("text/plain")
        assert "ragbus_queries_total" in response.text
        assert "ragbus_retrieval_latency_seconds_bucket" in response.text


def test_embeddings_are_cached_in_redis_by_model_and_content(
    pipeline: Pipeline, indexed_corpus: list[DocumentEvent]
) -> None:
    settings = pipeline.settings
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        keys = list(client.scan_iter(match=f"{settings.redis.namespace}:emb:*", count=1000))
        assert len(keys) >= len(indexed_corpus)
        assert all(len(client.get(k) or b"") == 384 * 4 for k in keys[:10])
    finally:
        client.close()
