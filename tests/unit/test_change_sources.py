"""Pure logic of the change sources: Debezium envelopes, pgoutput messages, which files a watcher publishes."""

from __future__ import annotations

import struct
from pathlib import Path

import orjson
import pytest

from producers.sources import pgoutput
from producers.sources.debezium_envelope import DebeziumMapping, document_event, envelope_of
from producers.sources.manifest import FileEntry, WatchManifest
from producers.sources.watch import is_document
from ragbus.errors import InvalidMessage
from schemas.documents import DocumentOp
from tests.debezium_records import change, key

MAPPING = DebeziumMapping("id", "body", "title", ("title",))
ROW = {"id": 7, "title": "Kelp", "body": "Kelp forests."}


@pytest.mark.parametrize("with_schema", [True, False])
def test_debezium_ops_with_and_without_schema(with_schema: bool) -> None:
    for op in ("c", "r", "u"):
        event = document_event(MAPPING, None, envelope_of(change(op, None, ROW, 500, with_schema=with_schema)))
        assert (event.op, event.doc_id, event.version, event.text) == (DocumentOp.UPSERT, "7", 500, "Kelp forests.")
        assert event.metadata == {"title": "Kelp"}
    deleted = document_event(MAPPING, None, envelope_of(change("d", ROW, None, 600, with_schema=with_schema)))
    assert (deleted.op, deleted.doc_id, deleted.version) == (DocumentOp.DELETE, "7", 600)


def test_debezium_delete_without_old_row_takes_the_id_from_the_key() -> None:
    payload = envelope_of(change("d", None, None, 600, with_schema=False))
    assert document_event(MAPPING, key(7, with_schema=True), payload).doc_id == "7"


def test_debezium_version_falls_back_to_source_time_in_microseconds() -> None:
    payload = orjson.loads(change("c", None, ROW, 500, with_schema=False))
    del payload["source"]["lsn"]
    event = document_event(MAPPING, None, envelope_of(orjson.dumps(payload)))
    assert event.version == payload["source"]["ts_ms"] * 1000


def test_debezium_malformed_envelopes_are_refused_with_a_reason() -> None:
    with pytest.raises(InvalidMessage, match="not JSON"):
        envelope_of(b"{oops")
    with pytest.raises(InvalidMessage, match="op 'z'"):
        envelope_of(b'{"op": "z"}')
    with pytest.raises(InvalidMessage, match="'body' \\(--text\\) is not text"):
        document_event(MAPPING, None, envelope_of(change("c", None, {**ROW, "body": 5}, 1, with_schema=False)))


def _tuple(*values: str | None) -> bytes:
    out = struct.pack("!h", len(values))
    for value in values:
        out += b"n" if value is None else b"t" + struct.pack("!i", len(value.encode())) + value.encode()
    return out


def test_pgoutput_messages() -> None:
    begin = pgoutput.decode(b"B" + struct.pack("!qqi", 0x1_0000_0010, 42, 7))
    assert begin == pgoutput.Begin(0x1_0000_0010, 42)
    relation = b"R" + struct.pack("!i", 16384) + b"public\0articles\0" + b"d" + struct.pack("!h", 2)
    relation += b"\x01id\0" + struct.pack("!ii", 23, -1) + b"\x00body\0" + struct.pack("!ii", 25, -1)
    assert pgoutput.decode(relation) == pgoutput.Relation(16384, "public", "articles", (("id", 23), ("body", 25)))
    insert = pgoutput.decode(b"I" + struct.pack("!i", 16384) + b"N" + _tuple("1", "hello"))
    assert insert == pgoutput.RowChange("insert", 16384, None, ("1", "hello"))
    update = pgoutput.decode(b"U" + struct.pack("!i", 16384) + b"K" + _tuple("1", None) + b"N" + _tuple("2", "x"))
    assert update == pgoutput.RowChange("update", 16384, ("1", None), ("2", "x"))
    delete = pgoutput.decode(b"D" + struct.pack("!i", 16384) + b"K" + _tuple("2", None))
    assert delete == pgoutput.RowChange("delete", 16384, ("2", None), None)
    commit = pgoutput.decode(b"C" + struct.pack("!bqqq", 0, 0x1_0000_0010, 0x1_0000_0040, 42))
    assert commit == pgoutput.Commit(0x1_0000_0010, 0x1_0000_0040, 42)
    assert pgoutput.lsn_text(0x16_B374D848) == "16/B374D848"


def test_watcher_publishes_documents_not_editor_files(tmp_path: Path) -> None:
    def doc(name: str, include: str | None = None) -> bool:
        return is_document(tmp_path / name, tmp_path, include)

    assert doc("notes/a.md") and doc("b.txt") and doc("c.jsonl")
    assert not doc("a.md~") and not doc(".a.md.swp") and not doc(".#a.md") and not doc("#a.md#")
    assert not doc(".git/x.md") and not doc("image.png") and not doc("~$report.txt")
    assert doc("notes/a.md", "*.md") and not doc("b.txt", "*.md")


def test_manifest_round_trips_atomically(tmp_path: Path) -> None:
    manifest = WatchManifest(tmp_path / "state" / "m.json")
    manifest.entries["/x/a.md"] = FileEntry("abc", 12, ("a.md",), 5, 6)
    manifest.save()
    assert WatchManifest(tmp_path / "state" / "m.json").entries == manifest.entries
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["m.json"]  # no temp file left behind
