"""A worker's metrics port answers /metrics and nothing else (a 200 on /readyz made it look like the API)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from ragbus.metrics_server import serve_metrics
from ragbus.stack.process import free_port


def test_the_metrics_port_serves_metrics_at_metrics_only() -> None:
    port = free_port()
    server = serve_metrics(port, "127.0.0.1")
    try:
        for path in ("/metrics", "/metrics/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
                assert reply.status == 200 and b"python_info" in reply.read()
        for path in ("/readyz", "/v1/query", "/"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
            assert refused.value.code == 404 and b"/metrics only" in refused.value.read()
    finally:
        server.shutdown()
        server.server_close()
