"""`ragbus watch`: keep folders in sync with the index.

Every change notification (debounced: a burst of saves is one batch) triggers a reconcile of the folders against
the manifest: a file whose content hash changed is read with the same readers as `ragbus publish` and published
(doc ids it no longer holds are deleted), a file gone (deleted, or renamed: a delete and a create) has its doc ids
deleted, anything else publishes nothing. The same reconcile at start-up publishes exactly what changed while
the watcher was down. Editor temp files (hidden, `~`, `.swp`, `#...#`) are not documents.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from watchfiles import awatch

from producers.sources.files import SUPPORTED, read_documents
from producers.sources.manifest import FileEntry, WatchManifest
from producers.sources.runtime import SourceRun, running_source
from ragbus.errors import InputError, PermanentError
from ragbus.settings import Settings
from schemas.documents import DocumentEvent, DocumentOp
from schemas.topics import Lane

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchSpec:
    """What to watch."""

    roots: tuple[Path, ...]
    include: str | None = None
    tenant: str = "default"
    manifest: Path | None = None

    def manifest_path(self, settings: Settings) -> Path:
        """The manifest file: --manifest, else one per set of folders under RAGBUS_SOURCE_STATE_DIR."""
        if self.manifest:
            return self.manifest
        key = "\0".join([*sorted(str(r.resolve()) for r in self.roots), self.include or "", self.tenant])
        return settings.source.state_dir / f"watch-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def is_document(path: Path, root: Path, include: str | None) -> bool:
    """A file the watcher publishes: a supported type, not an editor's temp or backup file, matching --include."""
    relative = path.relative_to(root)
    if path.suffix.lower() not in SUPPORTED or any(part.startswith((".", "#")) for part in relative.parts):
        return False
    if path.name.endswith("~") or path.name.startswith("~$"):
        return False
    return include is None or fnmatch.fnmatch(relative.as_posix(), include) or fnmatch.fnmatch(path.name, include)


def scan(spec: WatchSpec) -> dict[str, tuple[int, int]]:
    """Every watched file now: absolute path -> (mtime_ns, size)."""
    found: dict[str, tuple[int, int]] = {}
    for root in spec.roots:
        for path in root.resolve().rglob("*"):
            try:
                if path.is_file() and is_document(path, root.resolve(), spec.include):
                    stat = path.stat()
                    found[str(path)] = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                continue  # removed while scanning: the next batch sees it gone
    return found


def _digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _delete(doc_id: str, tenant: str, version: int, source: str) -> DocumentEvent:
    return DocumentEvent(op=DocumentOp.DELETE, doc_id=doc_id, tenant=tenant, version=version, source=source)


class FolderWatcher:
    """Reconciles folders against the manifest and publishes the difference."""

    def __init__(self, spec: WatchSpec, run: SourceRun) -> None:
        self.spec, self.run = spec, run
        self.manifest = WatchManifest(spec.manifest_path(run.settings))

    async def reconcile(self, lane: Lane | None = None) -> int:
        """Publish what differs from the manifest (in `lane`, by default by number); returns the number of events."""
        current = await asyncio.to_thread(scan, self.spec)
        updated: dict[str, FileEntry] = {}
        upserts: list[DocumentEvent] = []
        deletes: list[DocumentEvent] = []
        version = time.time_ns() // 1000
        for path, (mtime_ns, size) in current.items():
            old = self.manifest.entries.get(path)
            if old and (old.mtime_ns, old.size) == (mtime_ns, size):
                continue
            digest = _digest(path)
            if digest is None:
                continue  # gone since the scan
            if old and old.sha256 == digest:  # touched or saved unchanged: nothing to publish
                updated[path] = replace(old, mtime_ns=mtime_ns, size=size)
                continue
            try:
                docs = [d.model_copy(update={"version": version}) for d in read_documents([path], self.spec.tenant)]
            except InputError as exc:
                await self.run.dead_letter(path.encode(), None, _refused(exc), origin=path, partition=0, offset=version)
                kept = old.doc_ids if old else ()
                updated[path] = FileEntry(digest, old.version if old else 0, kept, mtime_ns, size)
                continue
            upserts += docs
            ids = tuple(d.doc_id for d in docs)
            deletes += [
                _delete(i, self.spec.tenant, version, path) for i in (old.doc_ids if old else ()) if i not in ids
            ]
            updated[path] = FileEntry(digest, version, ids, mtime_ns, size)
        gone = [p for p in self.manifest.entries if p not in current]
        for path in gone:
            deletes += [_delete(i, self.spec.tenant, version, path) for i in self.manifest.entries[path].doc_ids]
        upserted = {d.doc_id for d in upserts}  # a document moved between files is an upsert, not a delete
        events = upserts + [d for d in deletes if d.doc_id not in upserted]
        await self.run.publish(events, changed_at=version / 1e6 if events else None, lane=lane)
        if updated or gone:
            self.manifest.entries.update(updated)
            for path in gone:
                del self.manifest.entries[path]
            self.manifest.save()  # only now: the broker has every event it records
        if events:
            log.info("watch: published %d upserts and %d deletes", len(upserts), len(events) - len(upserts))
        return len(events)

    async def follow(self) -> None:
        """Catch up with what changed while down, then follow changes until SIGTERM."""
        await self.reconcile(Lane.BULK)  # the first sync: bulk work, never ahead of the edits that follow
        quiet_ms = self.run.settings.source.debounce_ms
        roots = [str(r) for r in self.spec.roots]
        log.info("watch: watching %s (manifest %s)", ", ".join(roots), self.manifest.path)
        async for _changes in awatch(*roots, step=max(quiet_ms, 1), debounce=max(1600, 5 * quiet_ms),
                                     stop_event=self.run.stopping):  # fmt: skip
            self.run.saw_change()
            await self.reconcile()


def _refused(exc: InputError) -> PermanentError:
    # Dead letters carry PermanentErrors: a file the readers refuse stays refused until it changes.
    return PermanentError(str(exc), code=exc.code)


async def watch_folders(settings: Settings, roots: Sequence[Path], include: str | None, tenant: str,
                        manifest: Path | None = None) -> None:  # fmt: skip
    """Run the watch source until SIGTERM (the entry point of `ragbus watch`)."""
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        raise InputError(f"not a directory: {', '.join(missing)}")
    spec = WatchSpec(tuple(roots), include, tenant, manifest)
    async with running_source("watch", settings, "folders " + ", ".join(str(r) for r in roots)) as run:
        await FolderWatcher(spec, run).follow()
