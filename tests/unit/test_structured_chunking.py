"""TokenChunker on extracted documents: sections as context, tables and code kept whole, rows never cut, pages."""

from __future__ import annotations

import pytest

from ragbus.embedding import ModelTokenizer
from ragbus.settings import ChunkingSettings, EmbeddingSettings
from schemas.documents import DocumentEvent
from schemas.extracted import Block, BlockKind, ExtractedDocument, header_of
from workers.chunker.chunking import TokenChunker
from workers.extractor.formats import extract


@pytest.fixture(scope="module")
def chunker() -> TokenChunker:
    return TokenChunker(ModelTokenizer.from_settings(EmbeddingSettings()), ChunkingSettings(tokens=120, overlap=16))


def extracted(blocks: list[Block], title: str = "Guide") -> ExtractedDocument:
    return ExtractedDocument(**header_of(DocumentEvent(doc_id="g", title=title, text="x")), blocks=blocks)  # type: ignore[arg-type]


def test_a_heading_gives_its_section_to_the_chunks_under_it(chunker: TokenChunker) -> None:
    markdown = b"# Guide\n\nWelcome.\n\n## Install\n\nRun pip install ragbus.\n\n## Query\n\nAsk with curl.\n"
    doc = chunker.chunk(extracted(extract("text/markdown", markdown).blocks))
    by_text = {c.text.split("\n\n")[-1]: c for c in doc.chunks}
    assert by_text["Run pip install ragbus."].section == "Guide > Install"
    assert by_text["Ask with curl."].section == "Guide > Query"
    assert doc.embedding_input(by_text["Ask with curl."]) == "Guide\nGuide > Query\nQuery\n\nAsk with curl."
    assert all("#" not in c.text for c in doc.chunks)


def test_a_table_that_fits_stays_whole_and_a_long_one_is_cut_between_rows(chunker: TokenChunker) -> None:
    rows = [["Setting", "Meaning"]] + [[f"RAGBUS_SETTING_{i}", f"what setting number {i} controls"] for i in range(60)]
    small = "\n".join(f"Setting: A{i}; Meaning: m{i}" for i in range(3))
    long_table = "\n".join(f"{h}: {r[0]}; {rows[0][1]}: {r[1]}" for r in rows[1:] for h in [rows[0][0]])
    doc = chunker.chunk(
        extracted(
            [
                Block(kind=BlockKind.PARAGRAPH, text="Intro text.", section=["Ref"]),
                Block(kind=BlockKind.TABLE, text=small, section=["Ref"]),
                Block(kind=BlockKind.TABLE, text=long_table, section=["Ref"]),
            ]
        )
    )
    assert small in doc.chunks[0].text  # the small table whole, with the paragraph before it
    table_chunks = [c for c in doc.chunks if "RAGBUS_SETTING_" in c.text]
    assert len(table_chunks) > 1
    lines = set(long_table.split("\n"))
    for chunk in table_chunks:
        assert all(line in lines for line in chunk.text.split("\n")), "a row was cut"
    assert "\n".join(c.text for c in table_chunks) == long_table  # every row, once, in order


def test_pdf_pages_become_chunk_pages(chunker: TokenChunker) -> None:
    blocks = [
        Block(text="Alpha facts on the first page.", page=1),
        Block(text="Beta facts on the second page.", page=2),
    ]
    doc = chunker.chunk(extracted(blocks))
    assert [(c.page, c.text) for c in doc.chunks] == [(1, blocks[0].text), (2, blocks[1].text)]
