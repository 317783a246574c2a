"""follow_documents: the one way to wait until published documents are searchable (or gone, or dead-lettered)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError

from ragbus.dead_letters import DeadLetter, list_dead_letters
from ragbus.errors import RagbusError, TransientError
from ragbus.milvus.document_states import DocumentState, MilvusDocumentStates
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings
from schemas.documents import parse_document_key
from schemas.topics import STAGES

DocKey = tuple[str, str]  # (tenant, doc_id)
LOOKUP_BATCH = 500


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


def pending_documents(store: MilvusChunkStore, expected: Mapping[DocKey, int | None]) -> set[DocKey]:
    """Documents whose indexed state is not yet `expected` (a version, or None for deleted)."""
    pending: set[DocKey] = set()
    by_tenant: dict[str, list[str]] = {}
    for tenant, doc_id in expected:
        by_tenant.setdefault(tenant, []).append(doc_id)
    for tenant, doc_ids in by_tenant.items():
        for start in range(0, len(doc_ids), LOOKUP_BATCH):
            part = doc_ids[start : start + LOOKUP_BATCH]
            indexed = store.indexed_versions(tenant, part)
            for doc_id in part:
                want = expected[(tenant, doc_id)]
                have = indexed.get(doc_id)
                done = have is None if want is None else (have is not None and max(have) >= want)
                if not done:
                    pending.add((tenant, doc_id))
        unfinished = versions_in_parts(store, tenant, [d for d in doc_ids if (tenant, d) not in pending])
        for doc_id, (version, _) in unfinished.items():
            want = expected[(tenant, doc_id)]
            if want is not None and version <= want:
                pending.add((tenant, doc_id))
    return pending


def versions_in_parts(store: MilvusChunkStore, tenant: str, doc_ids: list[str]) -> dict[str, tuple[int, int | None]]:
    """The documents whose newest version arrives in parts and is not whole yet: that version and the whole one
    before it (None: none). Its first parts are searchable already, so it must not count as indexed."""
    collection = store.alias_target() if doc_ids else None
    if collection is None:
        return {}
    states = MilvusDocumentStates(store).get(collection, [(tenant, d) for d in doc_ids])
    return {
        doc_id: (state.version, whole_version_before(store, state))
        for (_, doc_id), state in states.items()
        if state.parts_pending
    }


def whole_version_before(store: MilvusChunkStore, state: DocumentState) -> int | None:
    """The newest version recorded before the state's own whose chunks are all in the collection (None: none).

    A version recorded before may never have become whole: its part was dead-lettered and a newer version followed.
    """
    recorded = state.chunks or {}
    for version in sorted((v for v in recorded if 0 <= v < state.version), reverse=True):
        if store.count_document_chunks(state.tenant, state.doc_id, version) >= recorded[version]:
            return version
    return None


def _document_of(letter: DeadLetter) -> DocKey | None:
    try:
        return parse_document_key(letter.key) if letter.key is not None else None
    except UnicodeDecodeError:
        return None


async def new_dead_letters(settings: Settings, event_ids: Mapping[DocKey, str]) -> dict[DocKey, DeadLetter]:
    """Pending dead letters of exactly these events: the letter's document and the event id of its original
    message both match (a letter of an earlier publish of the same document does not count)."""
    found: dict[DocKey, DeadLetter] = {}
    for stage in STAGES:
        for letter in await list_dead_letters(settings, stage):
            doc = _document_of(letter)
            if letter.replayed or doc is None or doc not in event_ids or doc in found:
                continue
            if letter.event_id == event_ids[doc]:
                found[doc] = letter
    return found


async def follow_documents(
    settings: Settings,
    store: MilvusChunkStore,
    expected: Mapping[DocKey, int | None],
    *,
    timeout_s: float,
    event_ids: Mapping[DocKey, str] | None = None,
    on_progress: Callable[[FollowOutcome], None] | None = None,
    poll_s: float = 0.5,
    dead_letter_every_s: float = 3.0,
) -> FollowOutcome:
    """Poll the index until every document is as `expected` (a version, or None for gone), or the timeout passes.

    Documents with an id in `event_ids` also stop being waited for once that event is dead-lettered (checked
    every `dead_letter_every_s` and at the end); without `event_ids`, the dead-letter topics are not read.
    """
    started = time.monotonic()
    outcome = FollowOutcome(expected=len(expected))
    remaining = dict(expected)
    event_ids = event_ids or {}
    checked_letters_at = started
    while True:
        try:
            pending = await asyncio.to_thread(pending_documents, store, remaining)
        except TransientError:
            pending = set(remaining)
        remaining = {k: remaining[k] for k in pending}
        now = time.monotonic()
        wanted = {k: event_ids[k] for k in remaining if k in event_ids}
        if wanted and (now - checked_letters_at >= dead_letter_every_s or now - started >= timeout_s):
            checked_letters_at = now
            # The index is still followed when the broker is in trouble; that shows in the summary as pending.
            with contextlib.suppress(RagbusError, KafkaError, OSError):
                outcome.dead_lettered.update(await new_dead_letters(settings, wanted))
            for key in outcome.dead_lettered:
                remaining.pop(key, None)
        outcome.pending, outcome.seconds = set(remaining), time.monotonic() - started
        if on_progress:
            on_progress(outcome)
        if not remaining or outcome.seconds >= timeout_s:
            return outcome
        await asyncio.sleep(poll_s)


def versions_behind(store: MilvusChunkStore, tenant: str, wanted: Mapping[str, int]) -> dict[str, int | None]:
    """Documents of `tenant` whose index does not hold at least the wanted version yet, with the version it holds
    (None: nothing). Searchable chunks of that version or a newer one count; so does a delete at or after it, once
    its chunks are gone (the state of a version is recorded before its chunks are written, so a state alone does
    not make a version searchable)."""
    behind: dict[str, int | None] = {}
    doc_ids = list(wanted)
    for start in range(0, len(doc_ids), LOOKUP_BATCH):
        part = doc_ids[start : start + LOOKUP_BATCH]
        indexed = store.indexed_versions(tenant, part)
        for doc_id in part:
            have = max(indexed[doc_id]) if indexed.get(doc_id) else None
            if have is None or have < wanted[doc_id]:
                behind[doc_id] = have
        for doc_id, (version, whole) in versions_in_parts(store, tenant, [d for d in part if d not in behind]).items():
            if version <= wanted[doc_id]:
                behind[doc_id] = whole
    gone = [d for d, have in behind.items() if have is None]
    collection = store.alias_target() if gone else None
    if collection is not None:
        states = MilvusDocumentStates(store).get(collection, [(tenant, d) for d in gone])
        for (_, doc_id), state in states.items():
            if state.deleted and state.version >= wanted[doc_id]:
                del behind[doc_id]
    return behind
