"""Word documents with python-docx: heading styles become sections; paragraphs, list items and tables in order."""

from __future__ import annotations

import io
import zipfile

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.table import CT_Tbl
from docx.styles.styles import Styles
from docx.table import Table

from ragbus.errors import UnreadableDocument
from schemas.extracted import BlockKind
from workers.extractor.formats.structure import BlockWriter
from workers.extractor.formats.types import Extraction

MEDIA_TYPES = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",)
# The default paragraph style's id: ST_OnOff spells true three ways, and the spec takes the last default listed.
_DEFAULT_IDS = 'w:style[@w:type="paragraph" and (@w:default="1" or @w:default="true" or @w:default="on")]/@w:styleId'


class ParagraphStyleNames:
    """Paragraph style names by style id, each looked up once per document.

    python-docx's `paragraph.style` looks the style up again for every paragraph, and for a paragraph without a style
    of its own (most of them) it walks every style in the styles part converting each one's type: two thirds of the
    Word extraction time before this map.
    """

    def __init__(self, styles: Styles) -> None:
        self._styles = styles
        self._names: dict[str | None, str] = {}

    def name(self, style_id: str | None) -> str:
        """The name python-docx gives the style (`Heading 2`, `List Bullet`); the default style's for None."""
        name = self._names.get(style_id)
        if name is None:
            # python-docx's own fallbacks: the default style for None or an id it does not know
            found = style_id or ([None, *self._styles.element.xpath(_DEFAULT_IDS)])[-1]
            style = self._styles.get_by_id(found, WD_STYLE_TYPE.PARAGRAPH)
            name = self._names[style_id] = (style.name or "") if style is not None else ""
        return name


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
    styles = ParagraphStyleNames(document.styles)
    out = BlockWriter()
    first_heading = ""
    items: list[str] = []
    # One walk over the body's w:p and w:tbl elements, the ones Document.iter_inner_content() wraps.
    for element in document.element.body.inner_content_elements:
        if isinstance(element, CT_Tbl):
            out.add(BlockKind.LIST, "\n".join(items))
            items = []
            out.table([[cell.text for cell in row.cells] for row in Table(element, document).rows])
            continue
        name = styles.name(element.style)
        level, text = _heading_level(name), element.text
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
