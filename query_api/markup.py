"""Prose out of a Markdown passage: paragraphs and list items as plain text, no code, tables or heading hashes.

Passages are windows of a document's tokens, so one may start or end inside a code fence or a table. This is the
one place that knows Markdown, and the extractor's structured text (workers/extractor/formats/structure.py): a
table row there is one line of `header: value; header: value`, a list item one line without its marker, and a
paragraph one line, so a line that ends a sentence ends its block.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_TABLE_RULE = re.compile(r"^[\s|:\-]+$")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_AUTOLINK = re.compile(r"<(https?://[^>]+)>")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
# A table row of the extractor's structured text: two or more `header: value` pairs joined by "; ".
_ROW_PAIR = r"[^:;]{1,60}: [^;]*"
_STRUCTURED_ROW = re.compile(rf"^{_ROW_PAIR}(?:; {_ROW_PAIR})+$")
_SENTENCE_END = re.compile(r"[.!?][\"')*`\]]*$")


def prose_blocks(passage: str) -> list[str]:
    """The passage's prose: each paragraph or list item as one line of plain text, in order."""
    lines = passage.splitlines()
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append(_inline(" ".join(current)))
            current.clear()

    for line, in_code in zip(lines, _code_lines(lines), strict=True):
        stripped = line.strip()
        if in_code or _FENCE.match(line) or not stripped or _is_structure(stripped):
            flush()  # code, blank lines, headings, tables, quotes of HTML are not prose
        elif _LIST_MARKER.match(line):
            flush()
            current.append(_LIST_MARKER.sub("", line, count=1).strip())
        elif line.startswith(("    ", "\t")) and not current:
            flush()  # an indented code block (a continuation line of a paragraph is indented too)
        else:
            current.append(stripped.removeprefix("> ").strip())
            if _SENTENCE_END.search(stripped):
                flush()  # a list item or paragraph of structured text ends here (in wrapped prose, a sentence)
    flush()
    return [block for block in blocks if block]


def _is_structure(stripped: str) -> bool:
    return (
        stripped.startswith(("#", "|", "<", "![", "---", "==="))
        or stripped.endswith("|")
        or bool(_TABLE_RULE.match(stripped))
        or bool(_STRUCTURED_ROW.match(stripped))
    )


def _inline(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    return _EMPHASIS.sub(r"\2", text)


def _code_lines(lines: list[str]) -> list[bool]:
    """Which lines are inside a code fence. With an odd number of fences the passage was cut inside one: the side
    (before the first fence or after the last) that reads less like prose is the code."""
    fences = [i for i, line in enumerate(lines) if _FENCE.match(line)]
    inside = [False] * len(lines)
    if len(fences) % 2:
        before, after = lines[: fences[0]], lines[fences[-1] + 1 :]
        # Either the last fence opens a block the cut ended, or the first one closes a block the cut began in.
        fences = [*fences, len(lines)] if _prose_share(before) >= _prose_share(after) else [-1, *fences]
    for opening, closing in zip(fences[::2], fences[1::2], strict=True):
        for i in range(opening + 1, min(closing, len(lines))):
            inside[i] = True
    return inside


def _prose_share(lines: list[str]) -> float:
    """Share of non-blank lines that read like prose (several words, ending like a sentence or running on)."""
    text = [line.strip() for line in lines if line.strip()]
    if not text:
        return 0.0
    prose = [
        line for line in text if len(line.split()) >= 5 and not _is_structure(line) and not line.startswith(("$", "-"))
    ]
    return len(prose) / len(text)
