"""GET /metrics (and /metrics/): the API's Prometheus metrics, no credential needed."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import make_asgi_app
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send


class _Exposition:
    """prometheus_client's ASGI app (content negotiation, gzip) as a route's endpoint."""

    def __init__(self) -> None:
        self.app: ASGIApp = make_asgi_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def install_metrics(app: FastAPI) -> None:
    """Serve the metrics at `/metrics` itself (a mount there answers it with a redirect, which curl does not
    follow) and at `/metrics/`, where Prometheus was told to look before."""
    # An endpoint that is an object, not a function, is an ASGI app to Starlette.
    endpoint = _Exposition()
    for path in ("/metrics", "/metrics/"):
        app.router.routes.append(Route(path, endpoint, include_in_schema=False))
