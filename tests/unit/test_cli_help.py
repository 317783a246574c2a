"""`ragbus --help` and every subcommand's help are complete: a description, and help for every argument/option."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ragbus.cli.app import app

_BUILT_IN = {"help", "install_completion", "show_completion"}


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    # typer >= 0.29 builds on its own copy of click: walk the tree by shape, not by click's classes.
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_every_command_is_listed() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    expected = {"up", "publish", "delete", "query", "status", "worker", "api", "reindex", "replay", "dlq list"}
    assert expected <= names, names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_help_describes_the_command_and_every_parameter(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"`ragbus {' '.join(path)}` has no description"
    undocumented = [
        p.name for p in command.params if p.name not in _BUILT_IN and not (getattr(p, "help", None) or "").strip()
    ]
    assert not undocumented, f"`ragbus {' '.join(path)}`: no help for {undocumented}"
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert (command.help or "").split("\n")[0].strip()[:40] in " ".join(result.output.split())
