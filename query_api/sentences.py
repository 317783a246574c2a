"""Sentence boundaries of plain text, by pysbd's rules (abbreviations, decimals, file names and e.g. stay whole)."""

from __future__ import annotations

import re
from functools import lru_cache

import pysbd

# Inline code (`ragbus.dlq.<stage>.v1`, `.ragbus/`) is never split: it stands in as one plain word meanwhile. So is
# a word with a dot inside it (a path, a file or topic name) once its markup is gone, as in extracted Markdown:
# pysbd cut "under .ragbus/seaweedfs, so" after "under ." and "ragbus.dlq.<stage>.v1" at each dot. Abbreviations
# (e.g., Ph.D., U.S.; any word of short letter groups) and decimals are left to pysbd, which keeps them whole.
_CODE_SPAN = re.compile(r"`[^`\n]+`")
_STAND_IN = re.compile(r"Qcodespan(\d+)Q")
_TOKEN = re.compile(r"\S+")
_INNER_DOT = re.compile(r"\.[\w/<~-]")
_ABBREVIATION = re.compile(r"(?:[A-Za-z]{1,3}\.)+[A-Za-z]{0,3}")  # e.g, Ph.D, U.S, a.k.a: pysbd's to judge
_DECIMAL = re.compile(r"\d+(?:\.\d+)+")
_OPENING = "(\"'["
_CLOSING = ".,;:!?)]\"'"


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """The sentences of one block of plain text, stripped, in order."""
    spans: list[str] = []

    def stand_in(match: re.Match[str]) -> str:
        spans.append(match.group())
        return f"Qcodespan{len(spans) - 1}Q"

    def dotted(match: re.Match[str]) -> str:
        token = match.group()
        start, end = len(token) - len(token.lstrip(_OPENING)), len(token.rstrip(_CLOSING))
        word = token[start:end]
        if not _INNER_DOT.search(word) or _ABBREVIATION.fullmatch(word) or _DECIMAL.fullmatch(word):
            return token
        spans.append(word)
        return f"{token[:start]}Qcodespan{len(spans) - 1}Q{token[end:]}"

    protected = _TOKEN.sub(dotted, _CODE_SPAN.sub(stand_in, text))
    sentences = (_STAND_IN.sub(lambda m: spans[int(m.group(1))], s).strip() for s in _segmenter().segment(protected))
    return [s for s in sentences if s]
