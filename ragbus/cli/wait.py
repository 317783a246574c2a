"""`--wait`: follow published documents until searchable (or dead-lettered), with progress and a summary."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import typer
from aiokafka.errors import KafkaError

from producers.wait import pending_documents
from ragbus.cli.progress import CountedProgress
from ragbus.dead_letters import DeadLetter, list_dead_letters
from ragbus.errors import RagbusError, TransientError
from ragbus.milvus_store import MilvusChunkStore
from ragbus.settings import Settings
from schemas.documents import DocumentEvent, parse_document_key
from schemas.topics import STAGES

DocKey = tuple[str, str]  # (tenant, doc_id)


@dataclass
class FollowOutcome:
    """Where the followed documents ended up."""

    expected: int
    dead_lettered: dict[DocKey, DeadLetter] = field(default_factory=dict)
    pending: set[DocKey] = field(default_factory=set)
    seconds: float = 0.0

    @property
    def indexed(self) -> int:
        """Documents searchable as published (or gone, for deletes)."""
        return self.expected - len(self.dead_lettered) - len(self.pending)


def _document_of(letter: DeadLetter) -> DocKey | None:
    try:
        return parse_document_key(letter.key) if letter.key is not None else None
    except UnicodeDecodeError:
        return None


async def new_dead_letters(settings: Settings, event_ids: dict[DocKey, str]) -> dict[DocKey, DeadLetter]:
    """Pending dead letters of exactly these events (every stage's message carries the event's `event_id`)."""
    found: dict[DocKey, DeadLetter] = {}
    for stage in STAGES:
        for letter in await list_dead_letters(settings, stage):
            doc = _document_of(letter)
            if letter.replayed or doc not in event_ids or doc in found:
                continue
            if b'"event_id":"' + event_ids[doc].encode() + b'"' in (letter.value or b""):
                found[doc] = letter
    return found


async def follow_documents(
    settings: Settings,
    store: MilvusChunkStore,
    expected: dict[DocKey, int | None],
    *,
    event_ids: dict[DocKey, str],
    timeout_s: float,
    on_progress: Callable[[FollowOutcome], None],
    poll_s: float = 0.5,
    dead_letter_every_s: float = 3.0,
) -> FollowOutcome:
    """Poll the index until every document is as expected or dead-lettered, or the timeout passes."""
    started = time.monotonic()
    outcome = FollowOutcome(expected=len(expected))
    remaining = dict(expected)
    checked_letters_at = started
    while True:
        try:
            pending = await asyncio.to_thread(pending_documents, store, remaining)
        except TransientError:
            pending = set(remaining)
        remaining = {k: remaining[k] for k in pending}
        now = time.monotonic()
        if remaining and (now - checked_letters_at >= dead_letter_every_s or now - started >= timeout_s):
            checked_letters_at = now
            try:
                wanted = {k: event_ids[k] for k in remaining if k in event_ids}
                outcome.dead_lettered.update(await new_dead_letters(settings, wanted))
            except (RagbusError, KafkaError, OSError):
                pass  # the index is still followed; the broker's trouble shows in the summary as pending
            for key in outcome.dead_lettered:
                remaining.pop(key, None)
        outcome.pending, outcome.seconds = set(remaining), time.monotonic() - started
        on_progress(outcome)
        if not remaining or outcome.seconds >= timeout_s:
            return outcome
        await asyncio.sleep(poll_s)


def wait_for_documents(
    settings: Settings, events: Sequence[DocumentEvent], *, timeout_s: float, deleted: bool = False
) -> FollowOutcome:
    """Follow with a progress display, print the summary, and fail (exit 1) naming the fix if any is missing."""
    expected = {(e.tenant, e.doc_id): None if deleted else e.version for e in events}
    event_ids = {(e.tenant, e.doc_id): e.event_id for e in events}
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
                follow_documents(settings, store, expected, event_ids=event_ids, timeout_s=timeout_s, on_progress=show)
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
