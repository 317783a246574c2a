"""`ragbus doc DOC_ID`: where one document stands (indexed version, chunks, versions in flight, dead letter)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from ragbus.cli.settings import command_settings, fail
from ragbus.document_status import DocumentStatus, document_status
from ragbus.errors import RagbusError
from ragbus.milvus.store import MilvusChunkStore


def render(status: DocumentStatus) -> list[str]:
    """The lines `ragbus doc` prints."""
    if status.indexed_version is None:
        lines = [f"{status.doc_id}: not indexed"]
    elif status.deleted:
        lines = [f"{status.doc_id}: deleted at version {status.indexed_version}"]
    else:
        lines = [f"{status.doc_id}: version {status.indexed_version} searchable, {status.chunks} chunks"]
    if arriving := status.arriving:
        replaces = "the version above" if status.indexed_version is not None else "nothing"
        lines.append(
            f"arriving in parts: version {arriving.version}, {arriving.indexed} of {arriving.total} chunks in "
            f"(searchable as they come; whole once all are in, replacing {replaces})"
        )
    lines += [
        f"in flight: version {f.version}{' (delete)' if f.deleted else ''} waiting for the {f.stage}"
        for f in status.in_flight
    ]
    if status.scan_capped:
        lines.append("(a stage's backlog is longer than the scan: more versions may be in flight)")
    if letter := status.dead_letter:
        lines.append(
            f"dead-lettered by the {letter.stage} (version {letter.version}): {letter.error_code}: {letter.error}"
        )
    return lines


def doc_command(
    doc_id: Annotated[str, typer.Argument(help="Document id.")],
    tenant: Annotated[str, typer.Option(help="Tenant owning the document.")] = "default",
) -> None:
    """Where one document stands: indexed version and chunks, versions still in flight and where, dead letter."""
    settings = command_settings()

    async def read() -> DocumentStatus:
        store = await asyncio.to_thread(MilvusChunkStore, settings.milvus, settings.milvus_uri)
        try:
            return await document_status(settings, store, tenant, doc_id)
        finally:
            store.close()

    try:
        status = asyncio.run(read())
    except RagbusError as exc:
        fail(str(exc))
    for line in render(status):
        typer.echo(line)
    if not status.known:
        raise typer.Exit(1)
