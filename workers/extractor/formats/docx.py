"""Word documents with python-docx: heading styles become sections; paragraphs, list items and tables in order."""

from __future__ import annotations

import io
import zipfile

import docx
from docx.table import Table

from ragbus.errors import UnreadableDocument
from schemas.extracted import BlockKind
from workers.extractor.formats.structure import BlockWriter
from workers.extractor.formats.types import Extraction

MEDIA_TYPES = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",)


def _heading_level(name: str) -> int | None:
    if name == "Title":
        return 1
    if name.startswith("Heading"):
        digits = name.removeprefix("Heading").strip()
        return int(digits) if digits.isdigit() else 1
    return None


def extract(data: bytes) -> Extraction:
    """Blocks in document order; the title is the document's core property, else its first heading."""
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise UnreadableDocument(f"not a readable .docx file ({exc})", code="corrupt_docx") from None
    out = BlockWriter()
    first_heading = ""
    items: list[str] = []
    for part in document.iter_inner_content():
        if isinstance(part, Table):
            out.add(BlockKind.LIST, "\n".join(items))
            items = []
            out.table([[cell.text for cell in row.cells] for row in part.rows])
            continue
        style = part.style  # a lookup in the styles part: read it once per paragraph
        name = style.name or "" if style is not None else ""
        level, text = _heading_level(name), part.text
        is_item = name.startswith("List")
        if not is_item and items:
            out.add(BlockKind.LIST, "\n".join(items))
            items = []
        if level is not None:
            first_heading = first_heading or text
            out.heading(level, text)
        elif is_item:
            items.append(text)
        else:
            out.add(BlockKind.PARAGRAPH, text)
    out.add(BlockKind.LIST, "\n".join(items))
    title = (document.core_properties.title or first_heading).strip()
    return Extraction(title=title, blocks=out.blocks)
