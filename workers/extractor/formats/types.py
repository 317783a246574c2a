"""The result every format module returns."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.extracted import Block


@dataclass(frozen=True)
class Extraction:
    """A document's title (empty when the file names none) and its blocks."""

    title: str
    blocks: list[Block]
