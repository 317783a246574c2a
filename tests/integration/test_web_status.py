"""The page's status view, in headless Chromium, during an ingest: the indexed count rises, the lag falls, a
dead-lettered document shows its reason. Screenshots are kept under the test's tmp dir (path printed)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from ragbus.stack.process import ManagedProcess, free_port, stop_all
from schemas.documents import DocumentEvent
from tests.integration.test_web_page import CHROMIUM, CHROMIUM_ARGS
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DOCS = 100


@pytest.fixture(scope="module")
def fresh(base_servers: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    """Its own topics and collection, so the counts are exactly what this test published."""
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    with running_pipeline(env, stack_home) as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def status_api(fresh: Pipeline) -> Iterator[str]:
    port = free_port()
    log = fresh.home / f"{fresh.env['RAGBUS_KAFKA_TOPIC_PREFIX']}-status-api.log"
    env = {**fresh.env, "RAGBUS_API_PORT": str(port)}
    process = ManagedProcess("status-api", [sys.executable, "-m", "ragbus", "api"], log, env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, timeout_s=180)
        yield url
    finally:
        stop_all([process], timeout_s=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _off_loop(work: Callable[[], object]) -> None:
    """Run `work` (it calls asyncio.run) in a thread: Playwright's sync API keeps an event loop on this one."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(work).result()


def _count(page: Page, selector: str) -> int | None:
    shown = page.locator(selector).inner_text().replace(",", "")
    return int(shown) if shown.isdigit() else None


def _watch(page: Page, until: float, done: object) -> list[tuple[int | None, int | None]]:
    """(documents, lag) as the page shows them, each time it refreshes, until `done(documents, lag)` or `until`."""
    seen: list[tuple[int | None, int | None]] = []
    last = ""
    while time.monotonic() < until:
        stamp = page.locator("#st-updated").inner_text()
        if stamp != last:
            last = stamp
            seen.append((_count(page, "#st-documents"), _count(page, "#st-lag-total")))
            if done(*seen[-1]):  # type: ignore[operator]
                return seen
        page.wait_for_timeout(500)
    raise AssertionError(f"the page never showed the end state; it showed {seen}")


def _changes(freshness: str) -> int:
    """The change count of the freshness figure ("p50 s / p95 s (N changes, 15 min)"); 0 when it shows none."""
    found = re.search(r"\(([\d,]+) changes", freshness)
    return int(found[1].replace(",", "")) if found else 0


def _wait_text(page: Page, selector: str, until: float, done: Callable[[str], bool]) -> str:
    """The element's text once `done(text)`, or as it stands at `until`."""
    text = page.locator(selector).inner_text()
    while not done(text) and time.monotonic() < until:
        page.wait_for_timeout(500)
        text = page.locator(selector).inner_text()
    return text


def test_status_view_follows_an_ingest_and_shows_a_dead_letter_reason(
    fresh: Pipeline, status_api: str, browser: Browser, tmp_path: Path
) -> None:
    first = [DocumentEvent(doc_id="first.md", text="The first note, about lanterns.")]
    _off_loop(lambda: wait_indexed(fresh, publish(fresh, first)))
    fresh.stop_workers()  # the ingest waits in Kafka, so the page sees the lag before the workers take it
    events = [DocumentEvent(doc_id=f"note-{n}.md", text=f"Note {n} mentions lantern number {n}.") for n in range(DOCS)]
    # Over RAGBUS_CHUNK_MAX_DOCUMENT_CHARS (100000 here): the chunker dead-letters it.
    events.append(DocumentEvent(doc_id="huge.md", text="lantern " * 15_000))
    _off_loop(lambda: publish(fresh, events))

    page = browser.new_page(viewport={"width": 1000, "height": 1400})
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        page.goto(status_api + "/")
        # Closed, the view asks nothing (each poll would count against the key's rate limit): two refresh periods
        # pass without a reading. Open, it polls.
        page.wait_for_timeout(4500)
        assert page.locator("#st-updated").text_content() == "never"
        page.locator("#pipeline-status > summary").click()
        before = _watch(page, time.monotonic() + 120, lambda docs, lag: docs == 1 and lag and lag >= DOCS)
        page.screenshot(path=str(shots / "1-waiting.png"), full_page=True)
        fresh.start_workers()
        during = _watch(page, time.monotonic() + 600, lambda docs, lag: docs == DOCS + 1 and lag == 0)
        page.screenshot(path=str(shots / "2-indexed.png"), full_page=True)
        letter = page.locator("#st-dead-letters li", has_text="huge.md")
        letter.wait_for(timeout=60_000)
        reason = letter.inner_text()
        page.screenshot(path=str(shots / "3-dead-letter.png"), full_page=True)
        rate = page.locator("#st-rate").inner_text()
        # The API records a change's freshness when its invalidation consumer applies it, which can trail the
        # indexed count by a poll or two: wait (bounded) for the ingest to show there.
        freshness = _wait_text(page, "#st-freshness", time.monotonic() + 60, lambda text: _changes(text) >= DOCS)
        retrieval = page.locator("#st-retrieval").inner_text()
        plotted = page.locator("#plot-documents polyline").count()
    finally:
        page.close()
    print(f"status view screenshots: {shots}")

    seen = before[-1:] + during
    documents = [d for d, _ in seen if d is not None]
    lags = [lag for _, lag in seen if lag is not None]
    assert documents == sorted(documents) and documents[0] == 1 and documents[-1] == DOCS + 1, seen
    assert lags[0] >= DOCS and lags[-1] == 0, seen
    assert "chunker" in reason and "RAGBUS_CHUNK_MAX_DOCUMENT_CHARS" in reason, reason
    assert re.fullmatch(r"-?\d+\.\d docs/min", rate), rate
    # Freshness p50 / p95 of the changes the API applied (the first note and the ingest), over 15 minutes.
    shown = re.fullmatch(r"(\d+\.\d\d) s / (\d+\.\d\d) s \(([\d,]+) changes, 15 min\)", freshness)
    assert shown and float(shown[1]) <= float(shown[2]) and int(shown[3].replace(",", "")) >= DOCS, freshness
    assert plotted == 1
    assert retrieval.startswith("hybrid (collection "), retrieval  # milvus-lite does BM25
    assert all((shots / f).stat().st_size > 1000 for f in ("1-waiting.png", "2-indexed.png", "3-dead-letter.png"))
