"""`ragbus status` from any directory: the stack named by RAGBUS_STACK_HOME, then ./.ragbus, then a running API."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import httpx
import typer

from ragbus.cli.settings import command_settings, fail

DEFAULT_API = "http://127.0.0.1:8000"


def status_command(
    api_url: Annotated[
        str | None, typer.Option(envvar="RAGBUS_API_URL", help="Query API to ask when no stack is found here.")
    ] = None,
    credential: Annotated[
        str | None, typer.Option("--api-key", envvar="RAGBUS_QUERY_API_KEY", help="API key or JWT (auth on).")
    ] = None,
) -> None:
    """Show documents and chunks indexed, lag per stage, pending dead letters, the index and any reindex."""
    from ragbus.stack.endpoints import apply_endpoints

    home = Path(os.environ.get("RAGBUS_STACK_HOME", ".ragbus"))
    if apply_endpoints(home) or os.environ.get("RAGBUS_KAFKA_BOOTSTRAP"):
        from ragbus.status import collect_status, render

        settings = command_settings(use_running_stack=False)
        typer.echo(render(asyncio.run(collect_status(settings))))
        return
    from ragbus.status_report import StatusReport, render_report

    url = api_url or DEFAULT_API
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    try:
        response = httpx.get(f"{url}/v1/status", headers=headers, timeout=60)
    except httpx.HTTPError:
        fail(
            f"no running ragbus stack found (none recorded in {home.resolve()}, no query API at {url}): "
            "set RAGBUS_STACK_HOME to the directory `ragbus up` ran in (its .ragbus), or RAGBUS_API_URL to its API"
        )
    if response.status_code != 200:
        fail(f"query API at {url} answered {response.status_code}: {response.text[:300]}")
    typer.echo(f"(from the query API at {url})")
    typer.echo(render_report(StatusReport.model_validate(response.json())))
