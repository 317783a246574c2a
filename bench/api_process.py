"""The query API as its own process (`python -m ragbus api`), as users run it, for the benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from ragbus.stack.process import ManagedProcess, free_port

# Auth off and no rate limit: the benchmarks measure the query path, not the credential checks.
# Top k of 300 passages: enough distinct documents for recall@100 (about 2 chunks per SciFact abstract).
API_ENV = {"RAGBUS_API_AUTH": "off", "RAGBUS_API_RATE_LIMIT": "0", "RAGBUS_API_MAX_TOP_K": "300"}


def start_api(env: dict[str, str], home: Path, timeout_s: float = 180) -> tuple[ManagedProcess, str]:
    """Start the API on a spare port; returns (process, base URL) once /readyz answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process_env = {**env, **API_ENV, "RAGBUS_API_PORT": str(port)}
    # -P: the current directory does not come first on sys.path, so PYTHONPATH decides which tree runs (bench.api_ab
    # starts two trees' APIs from this one; without it both ran this tree's code).
    argv = [sys.executable, "-P", "-m", "ragbus", "api"]
    process = ManagedProcess("api", argv, home / f"api-{port}.log", process_env).start()
    process.wait_ready(lambda: httpx.get(f"{url}/readyz", timeout=5).status_code == 200, timeout_s, interval_s=1.0)
    return process, url
