"""Web pages with trafilatura: the main content only (no navigation, banners, sidebars or footers), its structure
kept (headings, paragraphs, lists, tables, code), and the page's title."""

from __future__ import annotations

import trafilatura
from lxml import etree

from ragbus.errors import UnreadableDocument
from schemas.extracted import BlockKind
from workers.extractor.formats.structure import BlockWriter
from workers.extractor.formats.types import Extraction

MEDIA_TYPES = ("text/html", "application/xhtml+xml")


def _text(element: etree._Element) -> str:
    return " ".join("".join(element.itertext()).split())


def extract(data: bytes) -> Extraction:
    """Blocks of the page's main content; UnreadableDocument(no_main_content) when the page has none."""
    xml = trafilatura.extract(
        data.decode("utf-8", errors="replace"),
        output_format="xml",
        with_metadata=True,
        include_tables=True,
        include_comments=False,
        favor_precision=True,
    )
    if not xml:
        raise UnreadableDocument(
            "the page has no main content that could be told from its boilerplate", code="no_main_content"
        )
    root = etree.fromstring(xml.encode())
    out = BlockWriter()
    for element in root.iterfind("main/*"):
        tag = element.tag
        if tag == "head":
            level = int((element.get("rend") or "h2").lstrip("h") or 2)
            out.heading(level, _text(element))
        elif tag == "list":
            out.add(BlockKind.LIST, "\n".join(_text(item) for item in element.iterfind(".//item")))
        elif tag == "table":
            out.table([[_text(cell) for cell in row.iterfind("cell")] for row in element.iterfind(".//row")])
        elif tag == "code":
            out.add(BlockKind.CODE, "".join(element.itertext()))
        else:
            out.add(BlockKind.PARAGRAPH, _text(element))
    return Extraction(title=(root.get("title") or "").strip(), blocks=out.blocks)
