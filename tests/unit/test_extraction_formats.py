"""Each format module on a real file made by its real writer: text, structure, pages, and the refusals."""

from __future__ import annotations

import pytest

from ragbus.errors import UnreadableDocument
from schemas.extracted import BlockKind
from tests.documents.samples import (
    FOOTER,
    docx_bytes,
    html_page,
    image_only_pdf_bytes,
    pdf_bytes,
    pptx_bytes,
)
from workers.extractor.formats import extract

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def test_pdf_text_per_page_with_outline_sections() -> None:
    data = pdf_bytes(["Alpha is on page one.", "Beta is on page two."], title="Report", sections=["Intro", "Results"])
    result = extract("application/pdf", data)
    paragraphs = [b for b in result.blocks if b.kind is BlockKind.PARAGRAPH]
    assert result.title == "Report"
    assert [(b.page, b.section, b.text) for b in paragraphs] == [
        (1, ["Intro"], "Alpha is on page one."),
        (2, ["Results"], "Beta is on page two."),
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (pdf_bytes(["secret"], password="pw"), "encrypted_pdf"),
        (image_only_pdf_bytes(), "no_text_layer"),
        (b"%PDF-1.4 this is not really a pdf", "corrupt_pdf"),
    ],
)
def test_pdf_refusals_say_why(data: bytes, code: str) -> None:
    with pytest.raises(UnreadableDocument) as refused:
        extract("application/pdf", data)
    assert refused.value.code == code


def test_html_keeps_the_article_and_drops_navigation_and_footer() -> None:
    page = html_page("Gardening", "Growing tomatoes", ["Tomatoes need six hours of sun every day to ripen well."] * 3)
    result = extract("text/html; charset=utf-8", page)
    text = "\n".join(b.text for b in result.blocks)
    assert "six hours of sun" in text
    assert FOOTER[:20] not in text and "Pricing" not in text and "cookies" not in text
    assert result.blocks[1].section == ["Growing tomatoes"]


def test_docx_headings_become_sections_and_tables_rows() -> None:
    data = docx_bytes("Handbook", {"Leave": ["You get 30 days."]}, table=[["Item", "Cost"], ["Train", "40"]])
    result = extract(DOCX, data)
    assert result.title == "Handbook"
    leave = next(b for b in result.blocks if b.text == "You get 30 days.")
    assert leave.section == ["Handbook", "Leave"]
    assert any(b.kind is BlockKind.TABLE and b.text == "Item: Train; Cost: 40" for b in result.blocks)


def test_docx_style_names_read_once_match_python_docx_and_keep_lists_under_headings() -> None:
    import io

    import docx

    from workers.extractor.formats.docx import ParagraphStyleNames

    document = docx.Document()
    document.add_heading("Guide", level=0)  # the Title style: level 1, like Heading 1
    document.add_heading("Setup", level=1)
    document.add_paragraph("Install it first.")
    document.add_paragraph("Fetch the wheel", style="List Bullet")
    document.add_paragraph("Run pip", style="List Number")
    document.add_heading("Details", level=3)
    document.add_paragraph("A quoted remark.", style="Quote")
    document.add_paragraph("No style of its own.")
    out = io.BytesIO()
    document.save(out)
    reread = docx.Document(io.BytesIO(out.getvalue()))
    names = ParagraphStyleNames(reread.styles)
    expected = [p.style.name for p in reread.paragraphs]  # python-docx's own lookup, per paragraph
    assert [names.name(p.style) for p in reread.element.body.inner_content_elements] == expected
    assert "Normal" in expected

    result = extract(DOCX, out.getvalue())
    assert [(b.kind, b.section, b.text) for b in result.blocks] == [
        (BlockKind.HEADING, ["Guide"], "Guide"),
        (BlockKind.HEADING, ["Setup"], "Setup"),
        (BlockKind.PARAGRAPH, ["Setup"], "Install it first."),
        (BlockKind.LIST, ["Setup"], "Fetch the wheel\nRun pip"),
        (BlockKind.HEADING, ["Setup", "Details"], "Details"),
        (BlockKind.PARAGRAPH, ["Setup", "Details"], "A quoted remark."),
        (BlockKind.PARAGRAPH, ["Setup", "Details"], "No style of its own."),
    ]
    assert result.title == "Guide"


def test_pptx_slides_are_sections() -> None:
    result = extract(PPTX, pptx_bytes([("Roadmap", ["Q1 ship the extractor", "Q2 scale out"])]))
    body = next(b for b in result.blocks if b.kind is BlockKind.LIST)
    assert body.text == "Q1 ship the extractor\nQ2 scale out"
    assert body.section == ["Slide 1: Roadmap"]


def test_markdown_markup_is_not_in_the_text() -> None:
    source = (
        b"# Guide\n\nIntro *text* with [a link](x).\n\n"
        b"## Commands\n\n| Command | Shows |\n|---|---|\n| `ragbus status` | lag |\n"
    )
    result = extract("text/markdown", source)
    assert [b.text for b in result.blocks] == [
        "Guide",
        "Intro text with a link.",
        "Commands",
        "Command: ragbus status; Shows: lag",
    ]
    assert result.blocks[-1].kind is BlockKind.TABLE and result.blocks[-1].section == ["Guide", "Commands"]


def test_unknown_media_type_is_refused() -> None:
    with pytest.raises(UnreadableDocument) as refused:
        extract("image/png", b"\x89PNG")
    assert refused.value.code == "unknown_media_type"
