"""Turn files (.txt, .md, .pdf, .html, .docx, .pptx, BEIR-style .jsonl) and directories into document events,
validating everything first. Text travels inline; other formats travel as a reference to their original bytes
(content-addressed, stored by the publisher before the event is sent: ragbus/originals.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from ragbus.errors import InputError
from schemas.codec import loads_exact
from schemas.documents import DocumentEvent, original_ref
from schemas.media_types import INLINE_MEDIA_TYPES, ORIGINAL_MEDIA_TYPES

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
JSONL_SUFFIXES = {".jsonl"}
SUPPORTED = TEXT_SUFFIXES | JSONL_SUFFIXES | set(ORIGINAL_MEDIA_TYPES)


def doc_id_for(path: Path) -> str:
    """Stable id of a file: its path relative to the working directory (absolute when outside it)."""
    relative = os.path.relpath(path.resolve())
    return Path(relative if not relative.startswith("..") else path.resolve()).as_posix()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def _title_of(path: Path, text: str) -> str:
    if path.suffix in {".md", ".markdown"}:
        for line in text.splitlines():
            if line.startswith("# "):
                return line[2:].strip()[:1000]
    return path.stem.replace("_", " ").replace("-", " ")


def _event(where: str, **fields: object) -> DocumentEvent:
    try:
        return DocumentEvent.model_validate(fields)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors())
        raise InputError(f"{where}: {details}") from None


def _from_text_file(path: Path, tenant: str) -> Iterator[DocumentEvent]:
    text = _read_text(path)
    yield _event(
        str(path),
        doc_id=doc_id_for(path),
        title=_title_of(path, text),
        text=text,
        source=str(path),
        tenant=tenant,
        media_type=INLINE_MEDIA_TYPES.get(path.suffix.lower(), "text/plain"),
    )


def _from_original(path: Path, tenant: str) -> Iterator[DocumentEvent]:
    # The event names the bytes by their hash; the publisher stores them (re-reading and re-checking the file).
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    yield _event(
        str(path),
        doc_id=doc_id_for(path),
        title="",  # the extractor takes the title from the file (its metadata or first heading)
        source=str(path),
        tenant=tenant,
        media_type=ORIGINAL_MEDIA_TYPES[path.suffix.lower()],
        original=original_ref(data),
    )


def _from_jsonl(path: Path, tenant: str) -> Iterator[DocumentEvent]:
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = loads_exact(line)
        except ValueError as exc:
            raise InputError(f"{where}: not JSON ({exc})") from None
        if not isinstance(row, dict) or "_id" not in row or "text" not in row:
            raise InputError(f'{where}: expected an object with "_id" and "text" (BEIR corpus format)')
        # Strict like every boundary (schemas.bounds): text, title and metadata are taken as they are, not coerced.
        yield _event(
            where,
            doc_id=str(row["_id"]),
            title=row.get("title") or "",
            text=row["text"],
            metadata=row.get("metadata") or {},
            source=where,
            tenant=tenant,
        )


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED:
                raise InputError(f"{path}: unsupported file type (use {', '.join(sorted(SUPPORTED))})")
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def read_documents(
    paths: Iterable[Path | str],
    tenant: str = "default",
    *,
    on_file: Callable[[Path, int], None] | None = None,
) -> list[DocumentEvent]:
    """Every document under `paths`, all read and validated before anything is published.

    `on_file(file, documents_so_far)` is called after each file (progress displays).
    """
    events: list[DocumentEvent] = []
    for file in _files(Path(p) for p in paths):
        suffix = file.suffix.lower()
        reader = (
            _from_jsonl
            if suffix in JSONL_SUFFIXES
            else _from_original
            if suffix in ORIGINAL_MEDIA_TYPES
            else _from_text_file
        )
        events.extend(reader(file, tenant))
        if on_file:
            on_file(file, len(events))
    seen: dict[tuple[str, str], str] = {}
    for event in events:
        key = (event.tenant, event.doc_id)
        if key in seen:
            raise InputError(f"document id {event.doc_id!r} appears twice ({seen[key]} and {event.source})")
        seen[key] = event.source or ""
    return events
