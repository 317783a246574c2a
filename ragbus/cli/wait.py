"""`--wait`: follow published documents until searchable (or dead-lettered), with progress and a summary."""

from __future__ import annotations

import asyncio

import typer

from ragbus.cli.progress import CountedProgress
from ragbus.document_follower import FollowOutcome, follow_documents
from ragbus.document_publisher import PublishReport
from ragbus.errors import TransientError
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings


def wait_for_documents(
    settings: Settings, published: PublishReport, *, timeout_s: float, deleted: bool = False
) -> FollowOutcome:
    """Follow with a progress display, print the summary, and fail (exit 1) naming the fix if any is missing."""
    expected = {key: None if deleted else version for key, version in published.versions.items()}
    try:
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    except TransientError as exc:
        typer.secho(
            f"error: {exc}\nthe documents were published but cannot be followed: check RAGBUS_MILVUS_URI (or that "
            "`ragbus up` is running), then see how far the workers got with `ragbus status`",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1) from exc
    display = CountedProgress("indexed", len(expected))

    def show(outcome: FollowOutcome) -> None:
        dead = len(outcome.dead_lettered)
        display.update(outcome.indexed, detail=f"dead-lettered {dead}" if dead else "")

    try:
        with display:
            outcome = asyncio.run(
                follow_documents(
                    settings, store, expected, event_ids=published.event_ids, timeout_s=timeout_s, on_progress=show
                )
            )
    finally:
        store.close()
    _summarize(outcome, timeout_s)
    return outcome


def _summarize(outcome: FollowOutcome, timeout_s: float) -> None:
    if not outcome.dead_lettered and not outcome.pending:
        typer.echo(f"all {outcome.expected} documents searchable in {outcome.seconds:.1f}s")
        return
    typer.echo(
        f"indexed {outcome.indexed}/{outcome.expected}, dead-lettered {len(outcome.dead_lettered)}, "
        f"pending {len(outcome.pending)} after {outcome.seconds:.1f}s"
    )
    problems: list[str] = []
    if outcome.dead_lettered:
        problems.append(
            f"{len(outcome.dead_lettered)} documents were dead-lettered: `ragbus dlq list` shows why; fix them and "
            "publish again, or `ragbus dlq replay` after fixing the worker"
        )
        for (_, doc_id), letter in sorted(outcome.dead_lettered.items())[:5]:
            problems.append(
                f"  {doc_id}: {letter.stage} rejected it ({letter.reason.error_code}): {letter.reason.error}"
            )
    if outcome.pending:
        shown = ", ".join(d for _, d in sorted(outcome.pending)[:5])
        problems.append(
            f"{len(outcome.pending)} documents not indexed after {timeout_s:.0f}s (e.g. {shown}); check the workers "
            "with `ragbus status` (consumer lag) and their logs under .ragbus/logs, or wait longer with --timeout"
        )
    typer.secho("error: " + "\n".join(problems), fg=typer.colors.RED, err=True)
    raise typer.Exit(1)
