"""PDF text layers with pypdfium2 (PDFium): text per page, sections from the document outline.

Measured against pypdf on the same fpdf2 files (docs/documents.md): identical text, about 3x the pages per second.
PDFium is not thread-safe, not even for separate documents (pypdfium2's "Incompatibility with Threading"), so one
PDF is read at a time in a process: the extractor's other work (other formats, the object store) runs beside it.
"""

from __future__ import annotations

import threading

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ragbus.errors import UnreadableDocument
from schemas.extracted import BlockKind
from workers.extractor.formats.structure import BlockWriter
from workers.extractor.formats.types import Extraction

MEDIA_TYPES = ("application/pdf",)
_PDFIUM = threading.Lock()


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if pdfium_c.FPDF_GetLastError() == pdfium_c.FPDF_ERR_PASSWORD or "password" in str(exc).lower():
            raise UnreadableDocument("the PDF is encrypted with a password", code="encrypted_pdf") from None
        raise UnreadableDocument(f"not a readable PDF ({exc})", code="corrupt_pdf") from None


def _outline(document: pdfium.PdfDocument) -> list[tuple[int, int, str]]:
    # (page index, level, title) of every outline entry that points at a page, in page order.
    try:
        entries = []
        for entry in document.get_toc():
            dest = entry.get_dest()
            index = dest.get_index() if dest is not None else None
            if index is not None:
                entries.append((index, entry.level, entry.get_title()))
    except Exception:  # a broken outline must not cost the text
        return []
    return sorted(entries, key=lambda e: (e[0], e[1]))


def extract(data: bytes) -> Extraction:
    """One paragraph block per page (page numbers from 1), in the outline section where the page starts."""
    with _PDFIUM:  # every PDFium call, closing included (document.close() closes its pages and text pages)
        return _extract(data)


def _extract(data: bytes) -> Extraction:
    document = _open(data)
    try:
        out = BlockWriter()
        outline = _outline(document)
        found_text = False
        for index in range(len(document)):
            try:
                text = document[index].get_textpage().get_text_bounded()
            except pdfium.PdfiumError as exc:
                raise UnreadableDocument(f"page {index + 1} cannot be read ({exc})", code="corrupt_pdf") from None
            while outline and outline[0][0] <= index:
                _, level, title = outline.pop(0)
                out.heading(level + 1, title, page=index + 1)
            text = "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n"))
            if text.strip():
                found_text = True
                out.add(BlockKind.PARAGRAPH, text, page=index + 1)
        if not found_text:
            raise UnreadableDocument(
                f"none of the {len(document)} pages has a text layer (a scan? OCR it first)", code="no_text_layer"
            )
        title = (document.get_metadata_value("Title") or "").strip()
    finally:
        document.close()
    return Extraction(title=title, blocks=out.blocks)
