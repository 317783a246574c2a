"""`ragbus dlq quarantine`: dead-letter the record a stage is stuck on, while the stack runs."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from pydantic import ValidationError

from ragbus.cli.settings import command_settings, fail
from ragbus.errors import RagbusError
from schemas.topics import Lane


def dlq_quarantine(
    stage: Annotated[str, typer.Option("--stage", help="extractor, chunker, embedder or indexer.")],
    partition: Annotated[int, typer.Option("--partition", min=0, help="Partition of the stage's input topic.")],
    offset: Annotated[
        int | None, typer.Option("--offset", min=0, help="Record to quarantine (default: the partition's head).")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded in the dead letter.")] = None,
    bulk: Annotated[bool, typer.Option("--bulk", help="The record is in the bulk lane's input topic.")] = False,
) -> None:
    """Have the running workers dead-letter one record unprocessed (default: the one at the partition's head)."""
    from ragbus.quarantine import quarantine_record  # Kafka clients load only for this command

    try:
        lane = Lane.BULK if bulk else Lane.LIVE
        request = asyncio.run(quarantine_record(command_settings(), stage, partition, offset, reason, lane=lane))
    except (RagbusError, ValidationError) as exc:
        fail(str(exc))
    typer.echo(
        f"quarantine requested: {request.stage} {request.topic}[{request.partition}]@{request.offset}; the worker "
        "dead-letters it within RAGBUS_WORKER_QUARANTINE_POLL_S (`ragbus dlq list` shows it, `ragbus dlq replay` "
        "brings it back)"
    )
