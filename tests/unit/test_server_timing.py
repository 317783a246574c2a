"""Server-Timing: the stages timed in a request come back in its header, summed per stage, total last."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench.api_ab import stage_times
from query_api.server_timing import install_server_timing, timed


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/twice")
    async def twice() -> dict[str, str]:
        with timed("search"):
            time.sleep(0.01)
        with timed("encode"):
            pass
        with timed("search"):  # a second search (another replica) adds to the first
            time.sleep(0.01)
        return {"ok": "yes"}

    @app.get("/none")
    async def none() -> dict[str, str]:
        return {"ok": "yes"}

    install_server_timing(app)
    return app


def test_stages_are_summed_and_the_total_comes_last() -> None:
    with TestClient(make_app()) as client:
        header = client.get("/twice").headers["server-timing"]
    assert [part.split(";")[0] for part in header.split(", ")] == ["search", "encode", "total"]
    stages = stage_times(header)
    assert 0.02 <= stages["search"] <= stages["total"]
    assert stages["encode"] < 0.005


def test_a_request_without_stages_has_its_total_only() -> None:
    with TestClient(make_app()) as client:
        header = client.get("/none").headers["server-timing"]
    assert header.startswith("total;dur=")


def test_timing_outside_a_request_records_nothing() -> None:
    with timed("encode"):
        pass  # no request: no error, nothing to record into


def test_an_older_api_without_the_header_gives_no_stages() -> None:
    assert stage_times("") == {}
    assert stage_times("cache;dur=0.25, total;dur=3.50") == {"cache": 0.00025, "total": 0.0035}
