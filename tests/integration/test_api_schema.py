"""Schemathesis against the live query API (its own process on real Kafka, Milvus and Redis): over a bounded number
of generated requests per route, no 5xx and no response that the OpenAPI document does not describe."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragbus.stack.process import ManagedProcess, free_port, stop_all
from tests.security_keys import Credentials
from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.one_engine, pytest.mark.slow]
# What must hold for every generated request, valid or not: no 5xx, and only responses the document describes.
CONFORMANCE = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
# Whether the API refuses exactly what its schema refuses. With the strict types and the patterns in the schema, two
# disagreements remain (run of 6 Dec, 399 generated): a version's upper bound is now + 1 day (schemas.bounds), which
# no static schema states, and the generator turns int64's maximum into a float (it sends 9223372036854775999); and
# JSON Schema counts 186.0 as an integer where the strict types refuse it by design (`"top_k": 186.0`; 5.0 as a
# version or top_k is refused in tests/unit/test_bounds.py).
STRICT_INPUT = ("negative_data_rejection", "positive_data_acceptance")
MAX_EXAMPLES = 25  # per route and phase: about 20 s a run on a loaded 2-core machine
STRICT_MAX_EXAMPLES = 10  # the strict run is known to disagree (see its xfail): enough to show where, not more


@pytest.fixture(scope="module")
def creds() -> Credentials:
    return Credentials()


@pytest.fixture(scope="module")
def live_api(pipeline: Pipeline, creds: Credentials, stack_home: Path) -> Iterator[str]:
    """`ragbus api` as production runs it, with authentication on and a rate limit no fuzzing run reaches."""
    port = free_port()
    # A generated min_versions names documents that never come: each such query waits out the longest wait allowed.
    env = {
        **pipeline.env, **creds.env(), "RAGBUS_API_PORT": str(port), "RAGBUS_API_RATE_LIMIT": "100000",
        "RAGBUS_API_MAX_MIN_VERSIONS_TIMEOUT_S": "0.5",
    }  # fmt: skip
    argv = [sys.executable, "-m", "ragbus", "api"]
    api = ManagedProcess("api", argv, stack_home / f"schema-api-{port}.log", env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        api.wait_ready(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, timeout_s=180)
        yield url
    finally:
        stop_all([api], timeout_s=10)


def _schemathesis(
    url: str, api_key: str, checks: tuple[str, ...], cwd: Path, examples: int = MAX_EXAMPLES
) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--checks", ",".join(checks),
        "--max-examples", str(examples), "--generation-deterministic", "--header", f"X-API-Key: {api_key}",
    ]  # fmt: skip
    try:
        return subprocess.run(  # cwd: its cache of failing examples stays out of the repository
            argv, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "NO_COLOR": "1"}, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:  # say which operations it had reached (a slow route shows there)
        output = exc.output.decode() if isinstance(exc.output, bytes) else str(exc.output)
        pytest.fail(f"schemathesis ran past 300 s:\n{output[-8000:]}")


def test_generated_requests_get_no_5xx_and_only_documented_responses(
    live_api: str, creds: Credentials, tmp_path: Path
) -> None:
    run = _schemathesis(live_api, creds.keys["acme"], CONFORMANCE, tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-12000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", output)
    assert generated and generated[1] == generated[2] and int(generated[1]) > 100, output[-4000:]


@pytest.mark.xfail(
    reason="a version's bound is now + 1 day (not statable in the schema; the generator also overshoots int64's "
    "maximum), and JSON Schema's integers include 186.0, which the strict types refuse by design",
    strict=False,
)
def test_the_api_refuses_exactly_what_its_schema_refuses(live_api: str, creds: Credentials, tmp_path: Path) -> None:
    run = _schemathesis(live_api, creds.keys["acme"], STRICT_INPUT, tmp_path, STRICT_MAX_EXAMPLES)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-12000:]
