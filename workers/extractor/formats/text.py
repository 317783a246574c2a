"""Plain text: one paragraph block per blank-line-separated paragraph."""

from __future__ import annotations

from schemas.extracted import BlockKind
from workers.extractor.formats.structure import BlockWriter
from workers.extractor.formats.types import Extraction

MEDIA_TYPES = ("text/plain",)


def extract(data: bytes) -> Extraction:
    """The text as it is (the chunker's token windows do the rest)."""
    out = BlockWriter()
    out.add(BlockKind.PARAGRAPH, data.decode("utf-8", errors="replace"))
    return Extraction(title="", blocks=out.blocks)
