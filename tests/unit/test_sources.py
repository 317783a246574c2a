"""Reading files into document events: formats, ids, and clear errors before anything is published."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from producers.sources.files import read_documents
from ragbus.errors import InputError


def test_reads_markdown_text_and_jsonl_recursively(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "guide.md").write_text("# The Guide\n\nHow to do things.")
    (tmp_path / "docs" / "sub" / "note.txt").write_text("A plain note.")
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "1", "title": "One", "text": "First."}\n\n{"_id": "2", "title": "", "text": "Second."}\n'
    )
    events = read_documents([Path("docs"), Path("corpus.jsonl")])
    by_id = {e.doc_id: e for e in events}
    assert set(by_id) == {"docs/guide.md", "docs/sub/note.txt", "1", "2"}
    assert by_id["docs/guide.md"].title == "The Guide"
    assert by_id["docs/sub/note.txt"].title == "note"
    assert by_id["1"].title == "One"
    assert by_id["2"].text == "Second."


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"_id": "1", "text": "ok"}\n{oops\n', "bad.jsonl:2: not JSON"),
        ("missing.jsonl", '{"title": "no id"}\n', 'missing.jsonl:1: expected an object with "_id"'),
        ("empty.md", "   \n", "empty.md: document: Value error, an upsert needs non-empty text"),
        ("bad.pdf", "x", "unsupported file type"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=re.escape(message)):
        read_documents([path])


def test_non_utf8_and_missing_files_are_refused(tmp_path: Path) -> None:
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_documents([latin])
    with pytest.raises(InputError, match="no such file"):
        read_documents([tmp_path / "nope.md"])


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"_id": "x", "text": "one"}\n')
    (tmp_path / "b.jsonl").write_text('{"_id": "x", "text": "two"}\n')
    with pytest.raises(InputError, match="appears twice"):
        read_documents([tmp_path])
