"""Extractive answers: whole sentences of the retrieved documents closest to the question, each cited.

A document's retrieved passages are merged first (consecutive chunks overlap), so a sentence the chunker cut in
two is whole again and a sentence two passages share is quoted once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from query_api.markup import prose_blocks
from query_api.sentences import split_sentences
from ragbus.milvus.rows import ChunkHit

NO_MATCH = "No indexed document matches this question yet."
# Passages were retrieved, but none holds a whole sentence to quote (only tables, code or fragments).
NO_SENTENCE = "None of the passages found holds a whole sentence to quote, so the best one is cited."
RELATIVE_PASSAGE_CUT = 0.8
# A sentence scoring below this share of the best one answers something else.
RELATIVE_SENTENCE_CUT = 0.7

# Scores a list of sentences against the question (higher is closer).
SentenceScorer = Callable[[list[str]], list[float]]

_WORD = re.compile(r"\w+", re.UNICODE)
_WHOLE_START = re.compile(r"^[\w\"'(*`\[]")
_WHOLE_END = re.compile(r"[.!?][\"')*`\]]*$")
_SENTENCE_START = re.compile(r"^[\"'(]?[A-Z0-9`]")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


# A lowercase sentence start is fine ("ragbus keeps ..."), but these words continue something said before.
_CONTINUATIONS = frozenset(
    ["or", "and", "but", "so", "then", "which", "that", "while", "because", "with", "to", "of", "in", "for", "as", "if"]
)


@dataclass(frozen=True)
class Sentence:
    """A whole sentence of a retrieved document, where it stands there, and the passage that cites it."""

    text: str
    title: str
    source: int  # n of its citation [n]: the best-ranked passage that holds it
    document: int  # rank of its document among the answer's documents
    position: int  # order within its document's merged passages


def lexical_scorer(query: str) -> SentenceScorer:
    """Scores by the share of the question's content words a sentence contains."""
    terms = _terms(query)
    return lambda sentences: [len(_terms(s) & terms) / max(1, len(terms)) for s in sentences]


def extractive_answer(
    query: str,
    hits: list[ChunkHit],
    passages: int,
    sentences: int = 4,
    scorer: SentenceScorer | None = None,
) -> str:
    """The answer: the `sentences` sentences closest to the question from the best `passages` documents, each
    followed by [n] (n: its passage's place among the citations), in document rank order, then text order."""
    if not hits:
        return NO_MATCH
    # The best passages first; when they hold no whole sentence (a table, a code block, a list of fragments), every
    # retrieved passage; when none does, the answer says so and points at the best one.
    candidates = candidate_sentences(hits, passages) or candidate_sentences(hits, len(hits), relative_cut=0.0)
    if not candidates:
        return f"{NO_SENTENCE} [1]"
    score = scorer or lexical_scorer(query)
    scores = score([f"{c.title}: {c.text}" if c.title else c.text for c in candidates])
    best = max(scores)
    ranked = sorted(range(len(candidates)), key=lambda i: -scores[i])
    chosen = [i for i in ranked if scores[i] >= best * RELATIVE_SENTENCE_CUT][:sentences] or ranked[:1]
    picked = sorted((candidates[i] for i in chosen), key=lambda c: (c.document, c.position))
    paragraphs: dict[int, list[str]] = {}
    for sentence in picked:
        paragraphs.setdefault(sentence.document, []).append(f"{sentence.text} [{sentence.source}]")
    return "\n\n".join(" ".join(parts) for parts in paragraphs.values())


def candidate_sentences(
    hits: list[ChunkHit], documents: int, relative_cut: float = RELATIVE_PASSAGE_CUT
) -> list[Sentence]:
    """Whole, distinct sentences of the best `documents` documents' passages close to the best passage (scoring
    at least `relative_cut` of its score)."""
    # Passages far less similar than the best one answer another question (the koi's diet when asked about the
    # koala). Citation numbers stay those of the full list: hit i is cited as [i + 1].
    best = max(hit.score for hit in hits)
    by_document: dict[str, list[tuple[int, ChunkHit]]] = {}
    for n, hit in enumerate(hits, 1):
        if hit.score >= best * relative_cut and (hit.doc_id in by_document or len(by_document) < documents):
            by_document.setdefault(hit.doc_id, []).append((n, hit))
    seen: list[set[str]] = []
    out: list[Sentence] = []
    for rank, cited in enumerate(by_document.values()):
        for position, (text, source) in enumerate(_document_sentences(cited)):
            words = _words(text)
            if any(_same(words, other) for other in seen):
                continue  # a sentence another passage (of this or another document) already gave
            seen.append(words)
            out.append(Sentence(text, cited[0][1].title, source, rank, position))
    return out


def _document_sentences(cited: list[tuple[int, ChunkHit]]) -> list[tuple[str, int]]:
    """(sentence, n) for one document's passages, consecutive ones merged, whole sentences only."""
    out: list[tuple[str, int]] = []
    for run in _runs(sorted(cited, key=lambda c: c[1].chunk_index)):
        text = run[0][1].text
        for _, hit in run[1:]:
            text = merge_overlapping(text, hit.text)
        found = [s for block in prose_blocks(text) for s in split_sentences(block)]
        if run[0][1].chunk_index > 0 and found and _starts_mid_paragraph(text) and not _starts_sentence(found[0]):
            found = found[1:]  # the passage begins where the chunker cut inside a paragraph, inside a sentence
        own = [(n, {_key(s) for b in prose_blocks(h.text) for s in split_sentences(b)}) for n, h in run]
        best_n = min(n for n, _ in run)
        for sentence in found:
            if is_whole(sentence):
                holders = [n for n, keys in own if _key(sentence) in keys]
                out.append((sentence, min(holders, default=best_n)))
    return out


def _runs(cited: list[tuple[int, ChunkHit]]) -> list[list[tuple[int, ChunkHit]]]:
    """Groups of passages with consecutive chunk indexes (they overlap in the document)."""
    runs: list[list[tuple[int, ChunkHit]]] = []
    for item in cited:
        if runs and item[1].chunk_index == runs[-1][-1][1].chunk_index + 1:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def merge_overlapping(first: str, second: str) -> str:
    """`first` and `second` joined where the end of `first` repeats as the start of `second` (chunk overlap)."""
    probe = second[: min(32, len(second))]
    at = first.find(probe) if probe else -1
    while at != -1:
        if second.startswith(first[at:]):
            return first[:at] + second
        at = first.find(probe, at + 1)
    return f"{first}\n\n{second}"  # no overlap found: keep both as separate paragraphs


def is_whole(sentence: str) -> bool:
    """A sentence that starts like one, ends like one, and carries no table cell or fence."""
    return (
        bool(_WHOLE_START.match(sentence))
        and bool(_WHOLE_END.search(sentence))
        and "|" not in sentence
        and "```" not in sentence
        and sentence.count("`") % 2 == 0  # else cut inside inline code
        and sentence.count("(") == sentence.count(")")
        and len(_WORD.findall(sentence)) >= 3
        and _first_word(sentence) not in _CONTINUATIONS
    )


def _starts_sentence(first: str) -> bool:
    """Whether a passage's first sentence most likely starts where the document's does.

    The chunker packs whole blocks (paragraphs, list items, table rows) into a chunk, so most passages begin
    where a paragraph does; only a paragraph too long for one chunk is cut into token windows, which begin inside
    it. Such a window is taken to begin inside a sentence unless its first sentence begins with a capital letter,
    a digit or inline code (a cut before a lowercase word, or a fragment too short or unbalanced, is dropped)."""
    return is_whole(first) and bool(_SENTENCE_START.match(first))


def _first_word(sentence: str) -> str:
    match = _WORD.search(sentence)
    return match.group() if match else ""


def _starts_mid_paragraph(text: str) -> bool:
    first = text.lstrip("\n").splitlines()[0] if text.strip() else ""
    return bool(first.strip()) and not first.lstrip().startswith(("#", "-", "*", "|", "```", ">"))


def _terms(text: str) -> set[str]:
    return {w for w in (m.group().casefold() for m in _WORD.finditer(text)) if w not in _STOPWORDS}


def _words(text: str) -> set[str]:
    return {m.group().casefold() for m in _WORD.finditer(text)}


def _key(sentence: str) -> str:
    return " ".join(m.group().casefold() for m in _WORD.finditer(sentence))


def _same(words: set[str], other: set[str]) -> bool:
    """Near duplicates: nine words in ten shared (a sentence quoted in two documents, or with a changed word)."""
    return len(words & other) >= 0.9 * max(len(words), len(other))
