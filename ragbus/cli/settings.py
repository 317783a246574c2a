"""What every `ragbus` command starts from: settings (with a running stack's URLs filled in), and a clean failure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import typer

from ragbus.errors import RagbusError
from ragbus.settings import Settings, load_settings


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` in red on stderr and exit with `code`."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def command_settings(*, use_running_stack: bool = True) -> Settings:
    """Settings, with the URLs of a running `ragbus up` filled in where the environment sets none."""
    from ragbus.stack.endpoints import apply_endpoints

    if use_running_stack:
        apply_endpoints(Path(os.environ.get("RAGBUS_STACK_HOME", ".ragbus")))
    try:
        return load_settings()
    except RagbusError as exc:
        fail(str(exc))
