"""The watch source's durable memory: for each file, its content hash, the version published and its doc ids.

Written atomically (a temp file, fsync, rename) and only after the broker confirmed the events it records, so
after any crash it describes what was published, or a little less (then the difference is published again:
harmless, the content is the same).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class FileEntry:
    """What was published for one file."""

    sha256: str
    version: int
    doc_ids: tuple[str, ...]
    mtime_ns: int = 0
    size: int = 0


class WatchManifest:
    """Path -> FileEntry, persisted as one JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, FileEntry] = {}
        if path.exists():
            raw = orjson.loads(path.read_bytes())
            self.entries = {p: FileEntry(**{**e, "doc_ids": tuple(e["doc_ids"])}) for p, e in raw.items()}

    def save(self) -> None:
        """Replace the file atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps(
            {p: e.__dict__ for p, e in sorted(self.entries.items())}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
        fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
