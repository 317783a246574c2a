"""What every format module builds with: the heading path above a block, and a table as self-contained rows."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.extracted import Block, BlockKind


class BlockWriter:
    """Collects blocks, tracking the heading path (a heading of level n replaces levels n and deeper)."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._path: list[tuple[int, str]] = []

    @property
    def section(self) -> list[str]:
        """Headings above the next block, outermost first."""
        return [text for _, text in self._path]

    def heading(self, level: int, text: str, page: int | None = None) -> None:
        """A heading: it starts a section and is itself a block of that section."""
        text = " ".join(text.split())
        if not text:
            return
        self._path = [(lvl, t) for lvl, t in self._path if lvl < level] + [(level, text)]
        self.blocks.append(Block(kind=BlockKind.HEADING, text=text, section=self.section, page=page))

    def add(self, kind: BlockKind, text: str, page: int | None = None) -> None:
        """A block of the current section (blank text is skipped)."""
        text = text.strip("\n")
        if text.strip():
            self.blocks.append(Block(kind=kind, text=text, section=self.section, page=page))

    def table(self, rows: Sequence[Sequence[str]], page: int | None = None) -> None:
        """A table (first row = header) as one block, one line per row."""
        self.add(BlockKind.TABLE, table_text(rows), page)


def table_text(rows: Sequence[Sequence[str]]) -> str:
    """Each data row as `header: value; ...` on its own line, so a row read alone still says what it means."""
    cleaned = [[" ".join(cell.split()) for cell in row] for row in rows if any(c.strip() for c in row)]
    if not cleaned:
        return ""
    header, body = cleaned[0], cleaned[1:]
    if not body:
        return "; ".join(header)
    lines = []
    for row in body:
        pairs = [f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v]
        lines.append("; ".join(pairs))
    return "\n".join(lines)
