"""`ragbus publish` with progress: files read (and documents found), then events sent and bytes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from rich.filesize import decimal

from producers.sources.files import read_documents
from ragbus.cli.progress import CountedProgress
from ragbus.document_publisher import PublishReport, publish_documents
from ragbus.settings import Settings
from schemas.documents import DocumentEvent
from schemas.topics import Lane


def read_with_progress(paths: Sequence[Path], tenant: str) -> list[DocumentEvent]:
    """Every document under `paths` (all validated), counting files as they are read."""
    with CountedProgress("read", unit="files") as display:

        def on_file(_: Path, documents: int) -> None:
            display.update(display.completed + 1, detail=f"{documents} documents")

        return read_documents(paths, tenant=tenant, on_file=on_file)


def publish_with_progress(
    settings: Settings, events: Sequence[DocumentEvent], *, bulk: bool | None = None
) -> PublishReport:
    """Publish `events` (in the bulk lane, the live one, or by default by their number), counting the events the
    broker confirmed and their bytes."""
    lane = None if bulk is None else Lane.BULK if bulk else Lane.LIVE
    sent_bytes = 0
    with CountedProgress("sent", len(events), unit="events") as display:

        def on_batch(sent: int, batch_bytes: int) -> None:
            nonlocal sent_bytes
            sent_bytes += batch_bytes
            display.update(sent, detail=decimal(sent_bytes))

        return asyncio.run(publish_documents(settings, events, on_progress=on_batch, lane=lane))
