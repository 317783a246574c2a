"""Real files made by real writers (fpdf2, python-docx, python-pptx) and a saved web page, for the document tests."""

from __future__ import annotations

import io

NAV = "Home About Pricing Careers Login Subscribe"
FOOTER = "Copyright 2026 Example Corp. All rights reserved. Privacy policy. Terms of service. Cookie settings."


def pdf_bytes(
    pages: list[str], *, title: str = "", sections: list[str] | None = None, password: str | None = None
) -> bytes:
    """A PDF with one text page per entry (an outline entry per page when `sections` names them)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=11)
    for number, text in enumerate(pages):
        pdf.add_page()
        if sections:
            pdf.start_section(sections[number])
        pdf.multi_cell(0, 6, text)
    if password:
        pdf.set_encryption(owner_password="owner-" + password, user_password=password)
    return bytes(pdf.output())


def image_only_pdf_bytes() -> bytes:
    """A 'scanned' PDF: one page holding only an image, no text layer."""
    from fpdf import FPDF
    from PIL import Image

    image = Image.new("RGB", (200, 100), "white")
    for x in range(20, 180):
        image.putpixel((x, 50), (0, 0, 0))
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=150)
    return bytes(pdf.output())


def docx_bytes(title: str, sections: dict[str, list[str]], table: list[list[str]] | None = None) -> bytes:
    """A Word document: a title heading, then a level-2 heading and paragraphs per section, and a table."""
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, level=1)
    for heading, paragraphs in sections.items():
        document.add_heading(heading, level=2)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx_bytes(slides: list[tuple[str, list[str]]]) -> bytes:
    """A PowerPoint deck: one title-and-content slide per (title, bullet lines)."""
    from pptx import Presentation

    deck = Presentation()
    layout = deck.slide_layouts[1]
    for title, bullets in slides:
        slide = deck.slides.add_slide(layout)
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for bullet in bullets[1:]:
            body.add_paragraph().text = bullet
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def html_page(title: str, heading: str, paragraphs: list[str]) -> bytes:
    """A saved web page: navigation, a cookie banner and a footer around an article."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script>window.analytics = {{track: function () {{}}}};</script><style>nav {{ color: red; }}</style></head>
<body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/about">About</a></li><li><a href="/pricing">Pricing</a>
</li><li><a href="/careers">Careers</a></li><li><a href="/login">Login</a></li><li><a href="/s">Subscribe</a></li></ul>
</nav></header>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies.</div>
<main><article><h1>{heading}</h1>
{body}
</article></main>
<aside class="sidebar"><h3>Related posts</h3><ul><li><a href="/x">Ten tips for gardeners</a></li></ul></aside>
<footer><p>{FOOTER}</p><p>Follow us on social media.</p></footer>
</body></html>""".encode()
