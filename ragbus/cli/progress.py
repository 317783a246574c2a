"""Progress of a long CLI command: a rich bar on a terminal, plain periodic lines when the output is captured."""

from __future__ import annotations

import sys
import time
from types import TracebackType

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column


def interactive_output() -> bool:
    """Whether stdout is a terminal a bar can redraw (not a pipe, a file or a test's capture)."""
    return sys.stdout.isatty()


class CountedProgress:
    """One counted task (`label completed/total unit, detail`).

    On a terminal it is a bar redrawn in place. Otherwise it prints a line when the numbers moved, at most one
    every `every_s` seconds, and always the final one: logs stay short and tests can read them.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "",
        interactive: bool | None = None,
        every_s: float = 2.0,
    ) -> None:
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.completed, self.detail = 0, ""
        self._printed, self._printed_at = "", 0.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if interactive_output() if interactive is None else interactive:
            # On a narrow terminal the detail is what gets cut short, never the label or the counts.
            digits = len(str(total)) if total is not None else 3
            self._bar = Progress(
                TextColumn("[bold]{task.description}", table_column=Column(min_width=len(label), no_wrap=True)),
                BarColumn(bar_width=20, table_column=Column(min_width=20, no_wrap=True)),
                MofNCompleteColumn(table_column=Column(min_width=2 * digits + 1, no_wrap=True)),
                TextColumn("{task.fields[unit]}", table_column=Column(min_width=len(unit), no_wrap=True)),
                TimeElapsedColumn(table_column=Column(min_width=7, no_wrap=True)),
                TextColumn("{task.fields[detail]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
                console=Console(file=sys.stdout),
            )
            self._task = self._bar.add_task(label, total=total, unit=unit, detail="")
            self._bar.start()

    def update(self, completed: int, total: int | None = None, detail: str = "") -> None:
        """New numbers (absolute, not increments)."""
        self.completed, self.detail = completed, detail
        if total is not None:
            self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=completed, total=self.total, detail=detail)
            return
        line = self.line()
        done = self.total is not None and completed >= self.total
        if line != self._printed and (done or time.monotonic() - self._printed_at >= self.every_s):
            self._print(line)

    def line(self) -> str:
        """The plain rendering of the current numbers."""
        count = f"{self.completed}/{self.total}" if self.total is not None else str(self.completed)
        unit = f" {self.unit}" if self.unit else ""
        detail = f", {self.detail}" if self.detail else ""
        return f"  {self.label} {count}{unit}{detail}"

    def close(self, *, completed: bool = True) -> None:
        """Stop redrawing; in plain mode print the final numbers unless the task failed (its error says why)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif completed and self.line() != self._printed:
            self._print(self.line())

    def _print(self, line: str) -> None:
        typer.echo(line)
        self._printed, self._printed_at = line, time.monotonic()

    def __enter__(self) -> CountedProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(completed=exc_type is None)
