"""Generation through a primary and fallback providers: retries, circuit breakers, degraded answers, streaming.

Two OpenAI-protocol servers controlled by the tests stand in for the providers; retrieval is the real pipeline's
Milvus and the cache the real Redis (switched off here unless a test is about it, so every query reaches the LLM).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.embedding import ModelTokenizer
from ragbus.settings import LLMProvider, LLMSettings, Settings
from ragbus.stack.process import free_port
from schemas.documents import DocumentEvent
from tests.corpus import animal_doc_id
from tests.fake_llm import FakeLLM
from tests.stack_fixtures import Pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.one_engine]


@pytest.fixture(autouse=True)
def _on_milvus_lite_only(request: pytest.FixtureRequest) -> None:
    """Providers, breakers and streaming do not depend on the Milvus engine: spend CI time on one."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("engine", "milvus-lite") != "milvus-lite":
        pytest.skip("engine-independent: runs on milvus-lite")


def sse_events(client: TestClient, body: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    """POST /v1/query with stream=true; the events in arrival order."""
    with client.stream("POST", "/v1/query", json={**body, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], orjson.loads(lines["data"])))
    return events


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[FakeLLM, FakeLLM]]:
    primary, fallback = (
        FakeLLM(reply="Primary: the koala eats eucalyptus leaves [1]."),
        FakeLLM(reply="Fallback: the koala eats eucalyptus leaves [1]."),
    )
    servers = [primary.serve(), fallback.serve()]
    yield primary, fallback
    for server in servers:
        server.should_exit = True


def llm_settings(
    settings: Settings, primary: FakeLLM, fallback: FakeLLM, cache_ttl_s: int = 0, context_tokens: int = 2000
) -> Settings:
    llm = LLMSettings(
        base_url=primary.base_url,
        max_context_tokens=context_tokens,
        api_key="k",
        model="primary-model",
        timeout_s=1.0,
        retries=1,
        retry_backoff_s=0.01,
        breaker_failures=2,
        breaker_cooldown_s=1.0,
        fallbacks=[LLMProvider(base_url=fallback.base_url, model="fallback-model", api_key="k2")],
    )
    redis = settings.redis.model_copy(update={"query_cache_ttl_s": cache_ttl_s})
    return type(settings)(**{**settings.__dict__, "llm": llm, "redis": redis})


@pytest.fixture
def chain_api(
    pipeline: Pipeline, providers: tuple[FakeLLM, FakeLLM], indexed_corpus: list[DocumentEvent]
) -> Iterator[TestClient]:
    primary, fallback = providers
    primary.reset()
    fallback.reset()
    with TestClient(create_app(llm_settings(pipeline.settings, primary, fallback))) as client:
        yield client


def ask(client: TestClient, query: str = "What does the koala eat?") -> dict[str, object]:
    response = client.post("/v1/query", json={"query": query, "top_k": 3})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_failing_primary_is_retried_then_the_fallback_answers(
    chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM]
) -> None:
    primary, fallback = providers
    primary.status = 500
    body = ask(chain_api)
    assert body["answer"] == fallback.reply and body["degraded"] is False
    assert len(primary.requests) == 2, "one call and one retry on a 5xx"
    assert [r["model"] for r in fallback.requests] == ["fallback-model"]
    citations = body["citations"]
    assert isinstance(citations, list) and citations[0]["doc_id"] == animal_doc_id("koala")


@pytest.mark.parametrize("status", [400, 401])
def test_client_errors_are_not_retried(chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM], status: int) -> None:
    primary, fallback = providers
    primary.status = status
    body = ask(chain_api)
    assert len(primary.requests) == 1
    assert body["answer"] == fallback.reply


def test_a_429_is_retried_on_the_same_provider(chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM]) -> None:
    primary, fallback = providers
    primary.fail_next = [429]
    body = ask(chain_api)
    assert body["answer"] == primary.reply
    assert len(primary.requests) == 2 and fallback.requests == []


def test_a_slow_primary_times_out_and_the_fallback_answers(
    chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM]
) -> None:
    primary, fallback = providers
    primary.delay_s = 3.0  # the client's timeout is 1 s
    started = time.monotonic()
    body = ask(chain_api)
    assert body["answer"] == fallback.reply
    assert time.monotonic() - started < 6, "two timed-out attempts, then the fallback"


def test_breaker_opens_then_half_opens_with_one_trial(
    chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM]
) -> None:
    primary, fallback = providers
    primary.status = 500
    ask(chain_api)
    ask(chain_api)  # 2 failed calls (each with its retry): the primary's breaker opens
    assert len(primary.requests) == 4
    body = ask(chain_api)
    assert body["answer"] == fallback.reply
    assert len(primary.requests) == 4, "an open breaker does not call the provider"
    assert 'ragbus_breaker_state{name="llm:primary"} 2.0' in chain_api.get("/metrics/").text

    time.sleep(1.1)  # cool-down over: half-open, and the trial fails -> open again at once
    ask(chain_api)
    assert len(primary.requests) == 6, "one trial call (and its retry)"
    ask(chain_api)
    assert len(primary.requests) == 6, "open again after the failed trial"

    primary.status = None
    time.sleep(1.1)
    body = ask(chain_api)
    assert body["answer"] == primary.reply, "a successful trial closes the breaker"
    ask(chain_api)
    assert len(primary.requests) == 8
    assert 'ragbus_breaker_state{name="llm:primary"} 0.0' in chain_api.get("/metrics/").text


def test_every_provider_failing_degrades_to_an_extractive_answer(
    chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM]
) -> None:
    primary, fallback = providers
    primary.status = fallback.status = 503
    body = ask(chain_api, "What does the puffin eat?")
    assert body["degraded"] is True
    assert "sand eels" in str(body["answer"]) and "[1]" in str(body["answer"])


def test_citation_markers_map_to_the_returned_citations(
    chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM]
) -> None:
    primary, _ = providers
    primary.reply = "Eucalyptus [1], also grass [2] and nothing else [9]."
    try:
        body = ask(chain_api)
    finally:
        primary.reply = "Primary: the koala eats eucalyptus leaves [1]."
    assert body["answer"] == "Eucalyptus [1], also grass [2] and nothing else."
    sources = orjson.loads(
        primary.requests[-1]["messages"][1]["content"].split("Sources (JSON data):\n", 1)[1].split("\n\nQuestion:")[0]
    )
    citations = body["citations"]
    assert isinstance(citations, list) and len(citations) == len(sources)
    assert [c["text"] for c in citations] == [s["text"] for s in sources]


def test_streaming_sends_citations_then_deltas_in_order_then_done(
    chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM]
) -> None:
    primary, _ = providers
    primary.stream_delay_s = 0.02
    events = sse_events(chain_api, {"query": "What does the koala eat?", "top_k": 3})
    names = [name for name, _ in events]
    assert names[0] == "citations" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    assert [data["text"] for name, data in events if name == "delta"] == primary.tokens()
    citations = events[0][1]["citations"]
    assert isinstance(citations, list) and citations[0]["doc_id"] == animal_doc_id("koala")
    assert events[-1][1]["degraded"] is False and events[-1][1]["cached"] is False
    assert primary.requests[-1]["stream"] is True


def test_a_stream_that_fails_to_start_falls_back_and_one_that_breaks_is_replaced(
    chain_api: TestClient, providers: tuple[FakeLLM, FakeLLM]
) -> None:
    primary, fallback = providers
    primary.status = 500
    events = sse_events(chain_api, {"query": "What does the koala eat?", "top_k": 3})
    assert "".join(str(d["text"]) for n, d in events if n == "delta") == fallback.reply

    primary.status = fallback.status = None
    primary.break_stream_after = 2
    events = sse_events(chain_api, {"query": "What does the puffin eat?", "top_k": 3})
    names = [name for name, _ in events]
    assert names[:3] == ["citations", "delta", "delta"] and "reset" in names
    after_reset = "".join(str(d["text"]) for n, d in events[names.index("reset") :] if n == "delta")
    assert "sand eels" in after_reset
    assert events[-1] == ("done", {**events[-1][1], "degraded": True})


def test_extractive_and_cached_answers_stream_too(
    pipeline: Pipeline, providers: tuple[FakeLLM, FakeLLM], indexed_corpus: list[DocumentEvent]
) -> None:
    primary, fallback = providers
    primary.reset()
    fallback.reset()
    primary.stream_delay_s = 0.01
    settings = llm_settings(pipeline.settings, primary, fallback, cache_ttl_s=300)
    body = {"query": f"What does the okapi eat? ({time.time_ns()})", "top_k": 3}
    with TestClient(create_app(settings)) as client:
        first = sse_events(client, body)
        again = sse_events(client, body)
        whole = client.post("/v1/query", json=body).json()
    answer = "".join(str(d["text"]) for n, d in first if n == "delta")
    assert again[0][0] == "citations" and again[-1][1]["cached"] is True
    assert "".join(str(d["text"]) for n, d in again if n == "delta") == answer == whole["answer"]
    assert whole["cached"] is True and len(primary.requests) == 1

    no_llm = type(pipeline.settings)(**{**pipeline.settings.__dict__})
    with TestClient(create_app(no_llm)) as client:
        events = sse_events(client, {"query": "What does the wombat eat?", "top_k": 3, "stream": True})
    text = "".join(str(d["text"]) for n, d in events if n == "delta")
    assert "native grasses" in text and events[-1][0] == "done" and events[-1][1]["degraded"] is False


def test_a_whole_and_a_streamed_answer_to_one_question_agree(
    pipeline: Pipeline, providers: tuple[FakeLLM, FakeLLM], indexed_corpus: list[DocumentEvent]
) -> None:
    """One pipeline answers both ways: the stream's deltas spell the whole answer, with the same citations."""
    primary, fallback = providers
    primary.reset()
    fallback.reset()
    body = {"query": "What does the koala eat?", "top_k": 3}
    no_cache = pipeline.settings.redis.model_copy(update={"query_cache_ttl_s": 0})  # each answer computed anew
    no_llm = type(pipeline.settings)(**{**pipeline.settings.__dict__, "redis": no_cache})

    def both(client: TestClient) -> tuple[dict[str, object], list[tuple[str, dict[str, object]]]]:
        whole = client.post("/v1/query", json=body)
        assert whole.status_code == 200, whole.text
        return whole.json(), sse_events(client, body)

    answered = []
    with TestClient(create_app(llm_settings(pipeline.settings, primary, fallback))) as client:
        answered.append(both(client))  # the LLM's answer
        primary.status = fallback.status = 503
        answered.append(both(client))  # every provider failing: extractive, degraded
    with TestClient(create_app(no_llm)) as client:
        answered.append(both(client))  # no LLM: extractive
    for whole, events in answered:
        assert [name for name, _ in events if name != "delta"] == ["citations", "done"]
        assert "".join(str(d["text"]) for n, d in events if n == "delta") == whole["answer"]
        streamed = events[0][1]["citations"]
        assert isinstance(streamed, list) and isinstance(whole["citations"], list)
        assert [(c["chunk_id"], c["text"]) for c in streamed] == [
            (c["chunk_id"], c["text"]) for c in whole["citations"]
        ]
        assert [c["score"] for c in streamed] == pytest.approx([c["score"] for c in whole["citations"]])
        done = events[-1][1]
        assert done["cached"] is whole["cached"] is False and done["degraded"] is whole["degraded"]
    assert answered[0][0]["answer"] == primary.reply
    assert [whole["degraded"] for whole, _ in answered] == [False, True, False]
    assert answered[1][0]["answer"] == answered[2][0]["answer"], "the same extractive answer, degraded or not"


def test_the_context_is_cut_to_the_token_budget_and_citations_follow(
    pipeline: Pipeline, providers: tuple[FakeLLM, FakeLLM], indexed_corpus: list[DocumentEvent]
) -> None:
    primary, fallback = providers
    primary.reset()
    fallback.reset()
    tokenizer = ModelTokenizer.from_settings(pipeline.settings.embedding)
    koala = next(e for e in indexed_corpus if e.doc_id == animal_doc_id("koala"))
    # Room for one passage (title and text, in the embedding model's tokens), not two.
    one = tokenizer.count(koala.title) + tokenizer.count(koala.text)
    budget = max(100, one + 20)  # 100 is the smallest budget the setting accepts
    assert budget < 2 * one - 10, "every animal's notes cost about the same"
    with TestClient(create_app(llm_settings(pipeline.settings, primary, fallback, context_tokens=budget))) as client:
        body = ask(client)
    user = primary.requests[-1]["messages"][1]["content"]
    sources = orjson.loads(user.split("Sources (JSON data):\n", 1)[1].split("\n\nQuestion:")[0])
    assert [s["source"] for s in sources] == [1]
    citations = body["citations"]
    assert isinstance(citations, list) and [c["doc_id"] for c in citations] == [animal_doc_id("koala")]


def test_deltas_reach_the_client_while_the_model_is_still_writing(
    pipeline: Pipeline, providers: tuple[FakeLLM, FakeLLM], indexed_corpus: list[DocumentEvent]
) -> None:
    primary, fallback = providers
    primary.reset()
    fallback.reset()
    primary.stream_delay_s = 0.4  # 7 tokens: the model needs about 2.8 s for the whole answer
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(llm_settings(pipeline.settings, primary, fallback)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout_s=120, message="the API to serve")
        arrivals: list[tuple[float, str]] = []
        started = time.monotonic()
        body = {"query": "What does the koala eat?", "top_k": 3, "stream": True}
        with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/query", json=body, timeout=30) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event: "):
                    arrivals.append((time.monotonic() - started, line.removeprefix("event: ")))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    deltas = [t for t, name in arrivals if name == "delta"]
    assert len(deltas) == len(primary.tokens())
    assert deltas[0] < deltas[-1] - 1.5, f"deltas arrived as the model wrote them, not all at the end: {arrivals}"
