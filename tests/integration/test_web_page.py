"""The query page at `/`, driven in headless Chromium against a real `ragbus api` process over HTTP."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from ragbus.stack.process import ManagedProcess, free_port, stop_all
from tests.fake_llm import FakeLLM
from tests.security_keys import Credentials
from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.one_engine, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest, engine: str, base_servers: dict[str, str]) -> Pipeline:
    """The animal corpus indexed; on milvus-lite only (the page does not depend on the engine)."""
    if engine != base_servers["milvus-lite"]:
        pytest.skip("the web page is engine-independent; covered on milvus-lite")
    request.getfixturevalue("indexed_corpus")
    pipeline: Pipeline = request.getfixturevalue("pipeline")
    return pipeline


def _start_api(pipeline: Pipeline, name: str, **extra_env: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        name,
        [sys.executable, "-m", "ragbus", "api"],
        pipeline.home / f"{pipeline.env['RAGBUS_KAFKA_TOPIC_PREFIX']}-{name}.log",
        {**pipeline.env, **extra_env, "RAGBUS_API_PORT": str(port)},
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, timeout_s=180)
    except BaseException:
        stop_all([process], timeout_s=10)
        raise
    return process, url


@pytest.fixture(scope="module")
def open_api(deployment: Pipeline) -> Iterator[str]:
    """`ragbus api` with authentication off (the embedded demo's setting)."""
    process, url = _start_api(deployment, "web-api-open")
    try:
        yield url
    finally:
        stop_all([process], timeout_s=10)


@pytest.fixture(scope="module")
def guarded_api(deployment: Pipeline) -> Iterator[tuple[str, Credentials]]:
    """`ragbus api` with API keys and tokens required."""
    creds = Credentials()
    # One question per key per hour: the second one shows the 429.
    limits = {"RAGBUS_API_RATE_LIMIT": "1", "RAGBUS_API_RATE_WINDOW_S": "3600"}
    process, url = _start_api(deployment, "web-api-auth", **creds.env(), **limits)
    try:
        yield url, creds
    finally:
        stop_all([process], timeout_s=10)


@pytest.fixture(scope="module")
def llm_api(deployment: Pipeline) -> Iterator[tuple[str, FakeLLM]]:
    """`ragbus api` generating answers with an OpenAI-protocol server the test controls."""
    llm = FakeLLM(reply="The koala eats eucalyptus leaves and little else, say the field notes [1].")
    server = llm.serve()
    env = {
        "RAGBUS_LLM_BASE_URL": llm.base_url,
        "RAGBUS_LLM_RETRIES": "0",
        "RAGBUS_LLM_TIMEOUT_S": "10",
        "RAGBUS_LLM_BREAKER_FAILURES": "100",
    }
    try:
        process, url = _start_api(deployment, "web-api-llm", **env)
        try:
            yield url, llm
        finally:
            stop_all([process], timeout_s=10)
    finally:
        server.should_exit = True


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def test_page_streams_an_answer_with_cited_titles_and_expandable_passages(open_api: str, browser: Browser) -> None:
    page = browser.new_page()
    try:
        page.goto(open_api + "/")
        assert "ragbus" in page.title()
        page.fill("#question", "What does the koala eat?")
        page.click("#submit")
        result = page.locator("#result")
        expect(result).to_have_attribute("data-state", "done", timeout=60_000)

        answer = page.locator("#answer").inner_text()
        assert "eucalyptus" in answer.lower(), answer
        citations = page.locator("#citations .citation")
        assert citations.count() >= 1
        titles = page.locator(".citation-title").all_inner_texts()
        assert "Field notes: the koala" in titles, titles
        assert page.locator("#error").is_hidden()
        assert "ms" in page.locator("#latency").inner_text()

        # A passage opens on click and shows the retrieved text.
        koala = citations.filter(has_text="Field notes: the koala").first
        passage = koala.locator(".passage")
        assert passage.is_hidden()
        koala.locator("summary").click()
        expect(passage).to_be_visible()
        assert "eucalyptus leaves" in passage.inner_text()

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "web_page_answer.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 1000

        # Asked again: the same answer comes from the cache, and the page says so.
        page.click("#submit")
        expect(page.locator("#badge-cached")).to_be_visible(timeout=60_000)
        assert "eucalyptus" in page.locator("#answer").inner_text().lower()
    finally:
        page.close()


def test_page_shows_401_for_a_wrong_key_remembers_a_good_one_and_shows_429(
    guarded_api: tuple[str, Credentials], browser: Browser
) -> None:
    url, creds = guarded_api
    # The page and its files need no credential (the questions it sends do).
    for path, kind in (("/", "text/html"), ("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        served = httpx.get(url + path, timeout=10)
        assert served.status_code == 200 and kind in served.headers["content-type"], (path, served.status_code)
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(url + "/")
        page.click("#settings summary")
        page.fill("#api-key", "rb_not-a-real-key")
        page.locator("#api-key").dispatch_event("change")
        page.fill("#question", "What does the koala eat?")
        page.click("#submit")
        error = page.locator("#error")
        expect(error).to_be_visible(timeout=30_000)
        text = error.inner_text()
        assert "401" in text, text
        assert "Enter a valid API key" in text, text
        # The API's own JSON message is shown, not a generic one.
        refused = httpx.post(
            f"{url}/v1/query", json={"query": "koala"}, headers={"X-API-Key": "rb_not-a-real-key"}, timeout=30
        ).json()["error"]
        assert refused["code"] in text and refused["message"] in text, (refused, text)
        assert page.locator("#result").is_hidden()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web_page_401.png"), full_page=True)

        # A valid key is kept in localStorage across reloads and lets the question through.
        page.fill("#api-key", creds.keys["acme"])
        page.locator("#api-key").dispatch_event("change")
        page.reload()
        assert page.locator("#api-key").input_value() == creds.keys["acme"]
        page.fill("#question", "What does the koala eat?")
        page.click("#submit")
        expect(page.locator("#result")).to_have_attribute("data-state", "done", timeout=60_000)
        assert page.locator("#error").is_hidden()

        # Over the key's rate limit: the 429 with its message and how long to wait.
        page.click("#submit")
        expect(error).to_be_visible(timeout=30_000)
        text = error.inner_text()
        assert "429 rate_limited:" in text, text
        assert "Retry after" in text, text
    finally:
        context.close()


def test_page_shows_the_answer_while_the_model_writes_it_and_flags_a_degraded_one(
    llm_api: tuple[str, FakeLLM], browser: Browser
) -> None:
    url, llm = llm_api
    llm.reset()
    llm.stream_delay_s = 0.3  # 14 tokens: the model needs about 4 s for the whole answer
    page = browser.new_page()
    try:
        page.goto(url + "/")
        page.fill("#question", "What does the koala eat?")
        page.click("#submit")
        answer, result = page.locator("#answer"), page.locator("#result")
        expect(answer).to_contain_text("koala eats", timeout=30_000)
        partial = answer.inner_text()
        # Shown while the model is still writing: part of the answer, the stream not finished.
        assert result.get_attribute("data-state") == "streaming", partial
        assert len(partial) < len(llm.reply), partial
        expect(result).to_have_attribute("data-state", "done", timeout=30_000)
        assert answer.inner_text() == llm.reply
        # The finished answer's [1] links to citation 1 and opens its passage.
        expect(page.locator("#citation-1 .passage")).to_be_hidden()
        page.locator("#answer a.cite", has_text="[1]").click()
        expect(page.locator("#citation-1 .passage")).to_be_visible()
        assert "Field notes: the koala" in page.locator(".citation-title").all_inner_texts()
        assert page.locator("#badge-degraded").is_hidden()

        # The model fails: the page still answers (extracted from the passages) and flags it degraded.
        llm.stream_delay_s, llm.status = 0.0, 500
        page.fill("#question", "Where does the koala find its food?")
        page.click("#submit")
        expect(result).to_have_attribute("data-state", "done", timeout=60_000)
        expect(page.locator("#badge-degraded")).to_be_visible()
        assert page.locator("#badge-cached").is_hidden()
        assert "eucalyptus" in answer.inner_text().lower()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web_page_degraded.png"), full_page=True)
    finally:
        page.close()
