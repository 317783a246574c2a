"""Originals of document events: small ones travel inside the event, larger ones go to object storage first.

The CLI's events name their file in `source` (the bytes are read again here and must still hash to the event's
sha256); the API passes the uploaded bytes. An original of at most RAGBUS_OBJECTS_INLINE_MAX_BYTES whose event
still fits RAGBUS_KAFKA_MAX_MESSAGE_BYTES travels inline (schema_version 3): the extractor then makes no
object-store request for it, and no object store is needed at all. Any other original is stored before its event
is published, so the extractor always finds it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

from ragbus.errors import InputError
from ragbus.object_store import S3ObjectStore
from ragbus.settings import Settings
from schemas.codec import encode
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


def _inline(settings: Settings, event: DocumentEvent, given: Mapping[str, bytes]) -> DocumentEvent:
    """The event with its original's bytes inside, when they are small enough and the event still fits a record."""
    original = event.original
    limit = settings.objects.inline_max_bytes
    if original is None or original.data is not None or limit == 0 or original.size > limit:
        return event  # 0: every original stored, an empty one too
    data = _bytes_of(event, given)  # checked against the original's sha256 there
    inline = event.model_copy(update={"original": original.model_copy(update={"data": data}), "schema_version": 3})
    return inline if len(encode(inline)) <= settings.kafka.max_message_bytes else event


def _store(settings: Settings, events: Sequence[DocumentEvent], given: Mapping[str, bytes]) -> int:
    store = S3ObjectStore(settings.objects)
    try:
        store.ensure_bucket()
        stored: set[str] = set()
        for event in events:
            if event.original is None or event.original.data is not None or event.original.sha256 in stored:
                continue
            if not store.exists(event.original.key):
                store.put_original(_bytes_of(event, given), event.media_type)
            stored.add(event.original.sha256)
        return len(stored)
    finally:
        store.close()


async def inline_originals(
    settings: Settings, events: Sequence[DocumentEvent], originals: Mapping[str, bytes] | None = None
) -> list[DocumentEvent]:
    """`events`, each small original's bytes put inside its event (`originals`: bytes by sha256, else read from the
    file the event's `source` names)."""
    if not any(e.original is not None and e.original.data is None for e in events):
        return list(events)
    given = originals or {}
    return await asyncio.to_thread(lambda: [_inline(settings, event, given) for event in events])


async def store_originals(
    settings: Settings, events: Sequence[DocumentEvent], originals: Mapping[str, bytes] | None = None
) -> int:
    """Store every event's original not inline and not stored yet (`originals`: bytes by sha256); returns how many
    distinct originals that took."""
    if not any(e.original is not None and e.original.data is None for e in events):
        return 0
    return await asyncio.to_thread(_store, settings, events, originals or {})
