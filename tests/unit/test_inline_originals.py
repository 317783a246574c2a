"""Which originals travel inside their event: small ones whose event still fits a Kafka record, read from the file
or the given bytes and checked against the hash the event was made with."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ragbus.errors import InputError
from ragbus.originals import inline_originals
from ragbus.settings import load_settings
from schemas.codec import decode, encode
from schemas.documents import DocumentEvent, original_ref


def event_of(path: Path) -> DocumentEvent:
    data = path.read_bytes()
    return DocumentEvent(doc_id=path.name, media_type="text/html", original=original_ref(data), source=str(path))


def test_small_originals_go_inline_and_the_rest_stay_references(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGBUS_OBJECTS_INLINE_MAX_BYTES", "1000")
    monkeypatch.setenv("RAGBUS_KAFKA_MAX_MESSAGE_BYTES", "20000")
    (tmp_path / "small.html").write_bytes(b"<p>small page</p>")
    (tmp_path / "large.html").write_bytes(b"<p>" + b"x" * 2000 + b"</p>")
    events = [event_of(tmp_path / "small.html"), event_of(tmp_path / "large.html"), DocumentEvent(doc_id="t", text="x")]
    small, large, text = asyncio.run(inline_originals(load_settings(), events))
    assert small.schema_version == 3 and small.original is not None and small.original.data == b"<p>small page</p>"
    assert decode(encode(small), DocumentEvent) == small
    assert (large, text) == (events[1], events[2])  # over the limit: stored; no original: as it was

    # an original under the limit whose event would not fit a record stays a reference (stored, not refused)
    monkeypatch.setenv("RAGBUS_OBJECTS_INLINE_MAX_BYTES", "100000")
    (tmp_path / "wide.html").write_bytes(b"<p>" + b"y" * 18000 + b"</p>")
    [wide] = asyncio.run(inline_originals(load_settings(), [event_of(tmp_path / "wide.html")]))
    assert wide.schema_version == 2 and wide.original is not None and wide.original.data is None

    # 0: every original stored
    monkeypatch.setenv("RAGBUS_OBJECTS_INLINE_MAX_BYTES", "0")
    (tmp_path / "empty.html").write_bytes(b"")
    unchanged = [events[0], event_of(tmp_path / "empty.html")]
    assert asyncio.run(inline_originals(load_settings(), unchanged)) == unchanged


def test_bytes_that_no_longer_match_the_event_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(b"<p>first</p>")
    event = event_of(path)
    path.write_bytes(b"<p>changed</p>")
    with pytest.raises(InputError, match="changed after it was read"):
        asyncio.run(inline_originals(load_settings(), [event]))
    given = asyncio.run(inline_originals(load_settings(), [event], {event.original.sha256: b"<p>first</p>"}))  # type: ignore[union-attr]
    assert given[0].original is not None and given[0].original.data == b"<p>first</p>"
