"""Sentence boundaries of plain text, by pysbd's rules (abbreviations, decimals, file names and e.g. stay whole)."""

from __future__ import annotations

import re
from functools import lru_cache

import pysbd

# Inline code (`ragbus.dlq.<stage>.v1`, `.ragbus/`) is never split: it stands in as one plain word meanwhile.
_CODE_SPAN = re.compile(r"`[^`\n]+`")
_STAND_IN = re.compile(r"Qcodespan(\d+)Q")


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """The sentences of one block of plain text, stripped, in order."""
    spans: list[str] = []

    def stand_in(match: re.Match[str]) -> str:
        spans.append(match.group())
        return f"Qcodespan{len(spans) - 1}Q"

    protected = _CODE_SPAN.sub(stand_in, text)
    sentences = (_STAND_IN.sub(lambda m: spans[int(m.group(1))], s).strip() for s in _segmenter().segment(protected))
    return [s for s in sentences if s]
