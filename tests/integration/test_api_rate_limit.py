"""The per-key rate limit holds across two real API processes sharing one Redis namespace."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from ragbus.stack.process import ManagedProcess, free_port, stop_all
from tests.security_keys import Credentials
from tests.stack_fixtures import pipeline_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LIMIT = 4


def _healthy(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200


@pytest.fixture(scope="module")
def creds() -> Credentials:
    return Credentials()


@pytest.fixture(scope="module")
def two_apis(base_servers: dict[str, str], stack_home: Path, creds: Credentials) -> Iterator[list[str]]:
    """Two `ragbus api` processes on spare ports: one deployment, one Redis namespace, a limit of 4 per hour."""
    # An hour-long window: the test cannot straddle a window boundary and see its count reset.
    env = pipeline_env(
        base_servers["kafka"],
        base_servers["milvus-lite"],
        base_servers["redis"],
        **creds.env(),
        RAGBUS_API_RATE_LIMIT=str(LIMIT),
        RAGBUS_API_RATE_WINDOW_S="3600",
    )
    ports = [free_port(), free_port()]
    processes = [
        ManagedProcess(
            f"api-{port}",
            [sys.executable, "-m", "ragbus", "api"],
            stack_home / f"rate-limit-api-{port}.log",
            {**env, "RAGBUS_API_PORT": str(port)},
        ).start()
        for port in ports
    ]
    try:
        for process, port in zip(processes, ports, strict=True):
            process.wait_ready(partial(_healthy, port), timeout_s=180)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        stop_all(processes, timeout_s=10)


def test_rate_limit_is_shared_by_every_api_process(two_apis: list[str], creds: Credentials) -> None:
    acme = {"X-API-Key": creds.keys["acme"]}
    responses = [
        httpx.post(f"{two_apis[i % 2]}/v1/query", json={"query": "What does the koala eat?"}, headers=acme, timeout=60)
        for i in range(2 * LIMIT + 2)
    ]
    statuses = [r.status_code for r in responses]
    # Each process saw only LIMIT + 1 requests: a per-process count would have let 2 * LIMIT through.
    assert statuses[:LIMIT] == [200] * LIMIT, [r.text for r in responses[:LIMIT]]
    assert statuses[LIMIT:] == [429] * (LIMIT + 2)
    for refused in responses[LIMIT:]:
        assert refused.json()["error"]["code"] == "rate_limited"
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert {r.url.port for r in responses[LIMIT:]} == {httpx.URL(u).port for u in two_apis}

    # The limit is per key: another key (also one of a JWT) is still served, by either process.
    for base in two_apis:
        other = httpx.post(
            f"{base}/v1/query", json={"query": "koala"}, headers={"X-API-Key": creds.keys["globex"]}, timeout=60
        )
        assert other.status_code == 200, other.text
    token = {"Authorization": f"Bearer {creds.hs256('acme')}"}
    assert httpx.post(f"{two_apis[0]}/v1/query", json={"query": "koala"}, headers=token, timeout=60).status_code == 200


def test_ragbus_query_sends_its_credential(two_apis: list[str], creds: Credentials) -> None:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "RAGBUS_QUERY_API_KEY"}
    argv = [sys.executable, "-m", "ragbus", "query", "What does the koala eat?", "--api-url", two_apis[1]]
    refused = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert refused.returncode == 1 and "unauthorized" in refused.stderr
    env["RAGBUS_QUERY_API_KEY"] = creds.keys["globex"]
    answered = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert answered.returncode == 0, answered.stderr
