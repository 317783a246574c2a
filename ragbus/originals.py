"""store_originals: put the original bytes of document events into object storage before the events are sent.

The CLI's events name their file in `source` (the bytes are read again here and must still hash to the event's
sha256); the API passes the uploaded bytes. Either way an event is only published after its original is stored,
so the extractor always finds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from ragbus.errors import InputError
from ragbus.object_store import S3ObjectStore
from ragbus.settings import Settings
from schemas.documents import DocumentEvent, original_ref


def _bytes_of(event: DocumentEvent, given: Mapping[str, bytes]) -> bytes:
    assert event.original is not None
    data = given.get(event.original.sha256)
    if data is None:
        try:
            data = Path(event.source or "").read_bytes()
        except OSError as exc:
            raise InputError(f"{event.source}: cannot read the original ({exc.strerror})") from None
    if original_ref(data).sha256 != event.original.sha256:
        raise InputError(f"{event.source}: the file changed after it was read; publish it again")
    return data


def _store(settings: Settings, events: Sequence[DocumentEvent], given: Mapping[str, bytes]) -> int:
    store = S3ObjectStore(settings.objects)
    try:
        store.ensure_bucket()
        stored: set[str] = set()
        for event in events:
            if event.original is None or event.original.sha256 in stored:
                continue
            if not store.exists(event.original.key):
                store.put_original(_bytes_of(event, given), event.media_type)
            stored.add(event.original.sha256)
        return len(stored)
    finally:
        store.close()


async def store_originals(
    settings: Settings, events: Sequence[DocumentEvent], originals: Mapping[str, bytes] | None = None
) -> int:
    """Store every event's original not stored yet (`originals`: bytes by sha256); returns how many events had one."""
    if not any(e.original is not None for e in events):
        return 0
    return await asyncio.to_thread(_store, settings, events, originals or {})
