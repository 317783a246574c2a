"""`ragbus reindex` and `ragbus replay`: rebuild the index from the log, reset a consumer group."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated

import typer

from ragbus.cli.progress import CountedProgress, interactive_output
from ragbus.cli.settings import command_settings
from ragbus.cli.settings import fail as _fail
from ragbus.errors import RagbusError
from ragbus.reindex import Reindexer, ReindexOptions
from ragbus.reindex_progress import PipelineProgress
from ragbus.replay import ReplayFrom, parse_offsets, reset_group
from ragbus.settings import Settings
from schemas.pipelines import PipelineState


class _Printer:
    """Reindex progress (documents replayed/total, lag per stage, ETA).

    On a terminal a bar redrawn in place; otherwise lines, at most one every `every_s` seconds and whenever the
    numbers move, and always the caught-up one.
    """

    def __init__(self, every_s: float = 2.0) -> None:
        self.every_s, self.last_at, self.last = every_s, 0.0, ""
        self.bar: CountedProgress | None = None  # opened at the first measurement, when the total is known

    def __call__(self, progress: PipelineProgress, eta_s: float | None) -> None:
        if interactive_output():
            self._draw(progress, eta_s)
            return
        line = progress.render(eta_s)
        if progress.caught_up or time.monotonic() - self.last_at >= self.every_s:
            if line != self.last or progress.caught_up:
                typer.echo(line)
            self.last_at, self.last = time.monotonic(), line

    def _draw(self, progress: PipelineProgress, eta_s: float | None) -> None:
        if self.bar is None:
            self.bar = CountedProgress(progress.collection, progress.total, unit="documents", interactive=True)
        lags = " ".join(f"{stage}={lag}" for stage, lag in progress.lag.items())
        eta = f", ETA {eta_s:.0f}s" if eta_s is not None else ""
        self.bar.update(progress.replayed, progress.total, detail=f"lag {lags}{eta}")
        if progress.caught_up:
            self.bar.close()
            self.bar = None


async def _list(reindexer: Reindexer) -> None:
    for spec in sorted((await reindexer.pipelines()).values(), key=lambda s: s.created_at):
        typer.echo(
            f"{spec.collection}\t{spec.state.value}\tchunk_tokens={spec.chunk_tokens} overlap={spec.chunk_overlap} "
            f"title_tokens={spec.title_tokens} model={spec.model}"
        )


async def _reindex(settings: Settings, options: ReindexOptions, *, switch: bool, force: bool, timeout_s: float) -> None:
    reindexer = Reindexer(settings)
    building = await reindexer.in_state(PipelineState.BUILDING)
    if building and options == ReindexOptions():
        spec = building[0]
        typer.echo(f"resuming the reindex into {spec.collection}")
    else:
        spec = await reindexer.start(options)
        typer.echo(
            f"reindexing into {spec.collection} (chunk_tokens={spec.chunk_tokens}, overlap={spec.chunk_overlap}, "
            f"model={spec.model}); queries keep being served from {spec.previous or 'the current collection'}"
        )
    if not switch:
        await reindexer.follow(spec, timeout_s=timeout_s, on_progress=_Printer())
        typer.echo(f"{spec.collection} has caught up; switch with `ragbus reindex` (it resumes and switches)")
        return
    if force:
        await reindexer.follow(spec, timeout_s=timeout_s, on_progress=_Printer())
        await reindexer.switch(spec)
    else:
        await reindexer.finish(spec, timeout_s=timeout_s, on_progress=_Printer())
    typer.echo(f"switched: alias {settings.milvus.alias} -> {spec.collection}; `ragbus reindex --rollback` undoes it")


def reindex_command(
    *,
    chunk_tokens: Annotated[int | None, typer.Option(help="Tokens per chunk of the new index.")] = None,
    overlap: Annotated[int | None, typer.Option(help="Tokens shared by consecutive chunks.")] = None,
    title_tokens: Annotated[int | None, typer.Option(help="Title tokens prefixed to each chunk.")] = None,
    model: Annotated[str | None, typer.Option(help="Embedding model of the new index.")] = None,
    name: Annotated[str | None, typer.Option(help="Collection name (default: the alias with the next _vN).")] = None,
    switch: Annotated[bool, typer.Option(help="Switch the alias once caught up and verified.")] = True,
    force: Annotated[bool, typer.Option(help="Switch once caught up even if the document counts differ.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the replay to catch up.")] = 3600.0,
    rollback: Annotated[bool, typer.Option("--rollback", help="Serve the previous collection again.")] = False,
    prune: Annotated[bool, typer.Option("--prune", help="Drop the collections kept for rollback.")] = False,
    abandon: Annotated[bool, typer.Option("--abandon", help="Give up the reindex in progress.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="Show every pipeline and its state.")] = False,
) -> None:
    """Rebuild the index from the documents topic into a new collection, then switch to it with no downtime."""
    settings = command_settings()
    reindexer = Reindexer(settings)
    if sum([rollback, prune, abandon, list_]) > 1:
        _fail("give at most one of --rollback, --prune, --abandon, --list")
    try:
        if list_:
            asyncio.run(_list(reindexer))
        elif rollback:
            spec = asyncio.run(reindexer.rollback())
            typer.echo(f"rolled back: alias {settings.milvus.alias} -> {spec.collection}")
        elif prune:
            pruned = asyncio.run(reindexer.prune())
            typer.echo(f"pruned {len(pruned)} collection(s): {', '.join(s.collection for s in pruned) or '-'}")
        elif abandon:
            spec = asyncio.run(reindexer.abandon())
            typer.echo(f"abandoned the reindex into {spec.collection}; nothing served changed")
        else:
            options = ReindexOptions(chunk_tokens, overlap, title_tokens, model, name)
            asyncio.run(_reindex(settings, options, switch=switch, force=force, timeout_s=timeout))
    except RagbusError as exc:
        _fail(str(exc))


def replay_command(
    *,
    topic: Annotated[str, typer.Option(help="Topic whose consumption is reset.")],
    group: Annotated[str, typer.Option(help="Consumer group to reset.")],
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Reprocess everything.")] = False,
    from_timestamp: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%dT%H:%M:%S%z"], help="Reprocess from this time (ISO with offset)."),
    ] = None,
    to_offset: Annotated[list[str] | None, typer.Option(help="PARTITION:OFFSET to resume from (repeatable).")] = None,
    force: Annotated[bool, typer.Option(help="Reset although the broker lists members.")] = False,
) -> None:
    """Reset a consumer group's offsets on a topic so its consumers reprocess from there."""
    settings = command_settings()
    try:
        target = ReplayFrom(from_beginning, from_timestamp, parse_offsets(to_offset or []))
        changed = asyncio.run(reset_group(settings, topic, group, target, force=force))
    except RagbusError as exc:
        _fail(str(exc))
    for partition, (old, new) in sorted(changed.items()):
        typer.echo(f"{topic}[{partition}]: {old} -> {new}")
    typer.echo(f"group {group} reset on {len(changed)} partition(s); its consumers resume there")
