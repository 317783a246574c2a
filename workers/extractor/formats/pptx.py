"""PowerPoint decks with python-pptx: each slide is a section named by its title; text frames and tables in order."""

from __future__ import annotations

import io
import zipfile

from pptx import Presentation
from pptx.exc import PackageNotFoundError

from ragbus.errors import UnreadableDocument
from schemas.extracted import BlockKind
from workers.extractor.formats.structure import BlockWriter
from workers.extractor.formats.types import Extraction

MEDIA_TYPES = ("application/vnd.openxmlformats-officedocument.presentationml.presentation",)


def extract(data: bytes) -> Extraction:
    """Per slide: a heading `Slide N: title`, then its text (one line per paragraph) and its tables."""
    try:
        deck = Presentation(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as exc:
        raise UnreadableDocument(f"not a readable .pptx file ({exc})", code="corrupt_pptx") from None
    out = BlockWriter()
    first_title = ""
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        first_title = first_title or title
        out.heading(1, f"Slide {number}: {title}" if title else f"Slide {number}")
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if shape.has_text_frame:
                lines = [p.text for p in shape.text_frame.paragraphs if p.text.strip()]
                out.add(BlockKind.LIST if len(lines) > 1 else BlockKind.PARAGRAPH, "\n".join(lines))
            elif shape.has_table:
                out.table([[cell.text for cell in row.cells] for row in shape.table.rows])
    title = (deck.core_properties.title or first_title).strip()
    return Extraction(title=title, blocks=out.blocks)
