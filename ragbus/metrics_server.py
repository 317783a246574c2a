"""The Prometheus endpoint of a worker or a change source: `/metrics` only.

prometheus_client's `start_http_server` answers every path with the metrics, so a health probe or a person trying
`/readyz` or `/v1/query` on a worker's port got a 200 and mistook it for the API (the new-user walk-through picked a
worker's port as the API that way). Here any other path is a 404 that says where the metrics are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

METRICS_PATHS = ("/metrics", "/metrics/")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood the log."""


def metrics_only_app() -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The WSGI app: the default registry at /metrics, 404 elsewhere."""
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in METRICS_PATHS:
            return metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: this port serves Prometheus metrics at /metrics only\n"]

    return app


def serve_metrics(port: int, host: str) -> WSGIServer:
    """Serve /metrics on `host:port` from a daemon thread; returns the server (shutdown() stops it)."""
    server = make_server(host, port, metrics_only_app(), ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=f"metrics-{port}", daemon=True).start()
    return server
