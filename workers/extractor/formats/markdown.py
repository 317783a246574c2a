"""Markdown (CommonMark + tables) with markdown-it-py: headings, paragraphs, lists, code and tables, markup removed."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from schemas.extracted import BlockKind
from workers.extractor.formats.structure import BlockWriter
from workers.extractor.formats.types import Extraction

MEDIA_TYPES = ("text/markdown",)
_PARSER = MarkdownIt("commonmark").enable("table")


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in {"text", "code_inline"}:
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(_inline_text(child))
    return "".join(parts)


def extract(data: bytes) -> Extraction:
    """Blocks of a Markdown document; the title is its first level-1 heading."""
    tokens = _PARSER.parse(data.decode("utf-8", errors="replace"))
    out = BlockWriter()
    title = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            text = _inline_text(tokens[i + 1])
            level = int(token.tag[1])
            title = title or (text if level == 1 else "")
            out.heading(level, text)
            i += 3
        elif token.type in {"bullet_list_open", "ordered_list_open"}:
            i = _list(tokens, i, out)
        elif token.type == "table_open":
            i = _table(tokens, i, out)
        elif token.type in {"fence", "code_block"}:
            out.add(BlockKind.CODE, token.content)
            i += 1
        elif token.type == "inline":
            out.add(BlockKind.PARAGRAPH, _inline_text(token))
            i += 1
        else:
            i += 1
    return Extraction(title=title.strip(), blocks=out.blocks)


def _list(tokens: list[Token], start: int, out: BlockWriter) -> int:
    # One block per top-level list, one line per item (nested items inline in their own lines).
    depth, items, i = 0, [], start
    while i < len(tokens):
        token = tokens[i]
        if token.type in {"bullet_list_open", "ordered_list_open"}:
            depth += 1
        elif token.type in {"bullet_list_close", "ordered_list_close"}:
            depth -= 1
            if depth == 0:
                break
        elif token.type == "inline":
            items.append(_inline_text(token))
        elif token.type in {"fence", "code_block"}:
            items.append(token.content.rstrip("\n"))
        i += 1
    out.add(BlockKind.LIST, "\n".join(items))
    return i + 1


def _table(tokens: list[Token], start: int, out: BlockWriter) -> int:
    rows: list[list[str]] = []
    i = start
    while tokens[i].type != "table_close":
        token = tokens[i]
        if token.type == "tr_open":
            rows.append([])
        elif token.type == "inline" and rows:
            rows[-1].append(_inline_text(token))
        i += 1
    out.table(rows)
    return i + 1
