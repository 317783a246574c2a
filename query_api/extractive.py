"""Extractive answers: the sentences of the best passages closest to the question, each cited."""

from __future__ import annotations

import re
from collections.abc import Callable

from ragbus.milvus.rows import ChunkHit

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}")
_WORD = re.compile(r"\w+", re.UNICODE)
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
NO_MATCH = "No indexed document matches this question yet."

# Scores a list of sentences against the question (higher is closer).
SentenceScorer = Callable[[list[str]], list[float]]


def split_sentences(passage: str) -> list[str]:
    """Sentences of a passage: wrapped lines joined, Markdown headings and code fences left out."""
    units: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            units.extend(s.strip() for s in _SENTENCE_END.split(" ".join(paragraph)) if s.strip())
            paragraph.clear()

    in_fence = False
    for line in passage.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            in_fence = not in_fence
        elif in_fence or not stripped or stripped.startswith("#") or set(stripped) <= set("|-: "):
            flush()  # code, blank lines, headings and table rules are not answers
        elif line.startswith(("    ", "\t")):
            flush()
            units.append(stripped)  # an indented command is its own unit
        else:
            paragraph.append(stripped)
    flush()
    return units


def lexical_scorer(query: str) -> SentenceScorer:
    """Scores by the number of the question's content words a sentence contains."""
    terms = _terms(query)
    return lambda sentences: [float(len(_terms(s) & terms)) for s in sentences]


def _terms(text: str) -> set[str]:
    return {w for w in (m.group().casefold() for m in _WORD.finditer(text)) if w not in _STOPWORDS}


RELATIVE_PASSAGE_CUT = 0.8


def extractive_answer(
    query: str,
    hits: list[ChunkHit],
    passages: int,
    sentences_per_passage: int = 2,
    scorer: SentenceScorer | None = None,
) -> str:
    """The answer text: from each of the best passages, its closest sentences in their original order, then [n]."""
    if not hits:
        return NO_MATCH
    score = scorer or lexical_scorer(query)
    # Passages far less similar than the best one answer another question (the koi's diet when asked about the
    # koala): quote only those close to the best. Hits come best first, so this keeps a prefix and [n] stays right.
    close = [hit for hit in hits[:passages] if hit.score >= hits[0].score * RELATIVE_PASSAGE_CUT]
    per_hit = [split_sentences(hit.text) for hit in close]
    # Each sentence is scored with its document's title, so "Its diet is krill." still knows whose diet it is.
    flat = [
        f"{hit.title}: {sentence}" if hit.title else sentence
        for hit, sentences in zip(hits, per_hit, strict=False)
        for sentence in sentences
    ]
    scores = score(flat) if flat else []
    parts, cursor = [], 0
    for n, sentences in enumerate(per_hit, 1):
        own = scores[cursor : cursor + len(sentences)]
        cursor += len(sentences)
        ranked = sorted(range(len(sentences)), key=lambda i: (-own[i], i))[:sentences_per_passage]
        excerpt = " ".join(sentences[i] for i in sorted(ranked))
        parts.append(f"{excerpt} [{n}]")
    return "\n\n".join(parts)
