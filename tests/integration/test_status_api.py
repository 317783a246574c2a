"""GET /v1/status on a fresh deployment: each tenant sees its own counts and dead letters; lag per stage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.settings import load_settings
from ragbus.stack.endpoints import write_endpoints
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from schemas.documents import DocumentEvent
from tests.pipeline_helpers import publish, wait_indexed
from tests.security_keys import Credentials
from tests.stack_fixtures import Pipeline, environment, pipeline_env, running_pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def fresh(base_servers: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    """Its own topics and collection, so the counts are exactly what this test published."""
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    with running_pipeline(env, stack_home) as pipeline:
        yield pipeline


def _doc(tenant: str, doc_id: str, text: str) -> DocumentEvent:
    return DocumentEvent(doc_id=doc_id, tenant=tenant, title=doc_id, text=text)


def test_each_tenant_sees_only_its_own_documents_chunks_and_dead_letters(fresh: Pipeline) -> None:
    acme = [_doc("acme", f"acme-{n}.md", f"Acme note {n} is about anvils and rockets.") for n in range(3)]
    globex = [_doc("globex", "globex-0.md", "Globex builds doomsday devices on a volcano.")]
    wait_indexed(fresh, publish(fresh, [*acme, *globex]))
    # Over RAGBUS_CHUNK_MAX_DOCUMENT_CHARS (100000 here): the chunker dead-letters it, with the reason.
    publish(fresh, [_doc("globex", "huge.md", "volcano " * 15_000)])

    creds = Credentials()
    with environment({**fresh.env, **creds.env()}):
        settings = load_settings()
    with TestClient(create_app(settings)) as client:

        def status(key: str) -> dict[str, object]:
            reply = client.get("/v1/status", headers={"X-API-Key": creds.keys[key]})
            assert reply.status_code == 200, reply.text
            body: dict[str, object] = reply.json()
            return body

        wait_for(lambda: status("globex")["dead_letters"], timeout_s=120, message="the huge document dead-lettered")
        # The API's invalidation consumer records each change's freshness as it applies it (from the topic's start).
        wait_for(lambda: status("acme")["freshness"]["documents"] == 3, timeout_s=60, message="acme's freshness")  # type: ignore[index]
        mine, theirs = status("acme"), status("globex")
        assert client.get("/v1/status").status_code == 401  # authentication on: no tenant, no status

    assert (mine["tenant"], mine["documents"]) == ("acme", 3)
    assert (theirs["tenant"], theirs["documents"]) == ("globex", 1)
    assert isinstance(mine["chunks"], int) and mine["chunks"] >= 3
    assert isinstance(theirs["chunks"], int) and 1 <= theirs["chunks"] < mine["chunks"]
    assert mine["dead_letters"] == []  # globex's dead letter is not shown to acme
    # Freshness per tenant: produced -> searchable of each change, p50 <= p95, per-minute counts adding up.
    fresh, their_fresh = mine["freshness"], theirs["freshness"]
    assert isinstance(fresh, dict) and isinstance(their_fresh, dict)
    assert (fresh["documents"], their_fresh["documents"]) == (3, 1)
    assert 0 <= fresh["p50_s"] <= fresh["p95_s"] < 600 and fresh["error"] is None
    assert sum(minute["documents"] for minute in fresh["per_minute"]) == 3
    [letter] = theirs["dead_letters"]  # type: ignore[misc]
    assert (letter["stage"], letter["doc_id"]) == ("chunker", "huge.md")
    assert "RAGBUS_CHUNK_MAX_DOCUMENT_CHARS" in letter["error"]
    assert mine["serving_collection"] and mine["serving_collection"] == theirs["serving_collection"]
    lag = mine["lag"]
    assert isinstance(lag, dict) and set(lag) == {"extractor", "chunker", "embedder", "indexer"}
    for stage in lag.values():
        assert stage["error"] is None and stage["total"] == sum(stage["partitions"].values())
        assert stage["partitions"], "lag is per partition"


def _ragbus_status(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAGBUS_")}
    return subprocess.run(
        [sys.executable, "-m", "ragbus", "status"],
        check=False, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_cli_status_from_another_directory_without_a_stack_says_so_in_one_line(tmp_path: Path) -> None:
    nothing = f"http://127.0.0.1:{free_port()}"
    result = _ragbus_status(tmp_path, RAGBUS_API_URL=nothing)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: no running ragbus stack found"), line
    assert "RAGBUS_STACK_HOME" in line and "RAGBUS_API_URL" in line and nothing in line


def test_cli_status_from_another_directory_finds_the_stack_of_ragbus_stack_home(
    fresh: Pipeline, tmp_path: Path
) -> None:
    home = tmp_path / "stack"
    home.mkdir()
    write_endpoints(home, {k: v for k, v in fresh.env.items() if k.startswith("RAGBUS_")})  # as `ragbus up` does
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _ragbus_status(elsewhere, RAGBUS_STACK_HOME=str(home), HF_HUB_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    assert "unavailable" not in result.stdout, result.stdout
    prefix = fresh.env["RAGBUS_KAFKA_TOPIC_PREFIX"]
    assert f"{prefix}.documents" in result.stdout
    assert re.search(r"^chunker\s+0 ", result.stdout, flags=re.MULTILINE), result.stdout


def test_cli_status_without_a_stack_here_asks_the_running_api_as_the_callers_tenant(
    fresh: Pipeline, tmp_path: Path
) -> None:
    """No stack recorded where it runs: `ragbus status` falls back to the query API (RAGBUS_API_URL) and prints the
    report of the key's tenant."""
    wait_indexed(
        fresh, publish(fresh, [_doc("globex", "tps-report.md", "Globex files TPS reports with cover sheets.")])
    )
    creds = Credentials()
    port = free_port()
    env = {**fresh.env, **creds.env(), "RAGBUS_API_PORT": str(port)}
    api = ManagedProcess("status-cli-api", [sys.executable, "-m", "ragbus", "api"], tmp_path / "api.log", env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        api.wait_ready(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, timeout_s=180)
        nowhere = tmp_path / "elsewhere"
        nowhere.mkdir()
        asked = _ragbus_status(nowhere, RAGBUS_API_URL=url, RAGBUS_QUERY_API_KEY=creds.keys["globex"])
        direct = httpx.get(f"{url}/v1/status", headers={"X-API-Key": creds.keys["globex"]}, timeout=60).json()
        refused = _ragbus_status(nowhere, RAGBUS_API_URL=url, RAGBUS_QUERY_API_KEY="not-a-key")
    finally:
        stop_all([api], timeout_s=10)
    assert asked.returncode == 0, asked.stderr
    assert f"(from the query API at {url})" in asked.stdout
    assert direct["documents"] >= 1  # this test's document, and the first test's when the module runs whole
    shown = f"tenant globex: {direct['documents']} documents, {direct['chunks']} chunks"
    assert re.search(rf"^{shown}$", asked.stdout, flags=re.MULTILINE), asked.stdout
    assert re.search(r"^chunker\s+0 ", asked.stdout, flags=re.MULTILINE), asked.stdout
    assert refused.returncode == 1 and "answered 401" in refused.stderr, refused.stderr
