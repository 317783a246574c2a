"""Extractive answers: the sentences of the best passages that share most with the question, cited."""

from __future__ import annotations

import re

from ragbus.milvus_store import ChunkHit

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


def _terms(text: str) -> set[str]:
    return {w for w in (m.group().casefold() for m in _WORD.finditer(text)) if w not in _STOPWORDS}


def best_sentences(passage: str, query_terms: set[str], keep: int) -> str:
    """Up to `keep` sentences of `passage` sharing the most terms with the query, in their original order."""
    sentences = [s.strip() for s in _SENTENCE_END.split(passage) if s.strip()]
    if len(sentences) <= keep:
        return " ".join(sentences)
    ranked = sorted(range(len(sentences)), key=lambda i: (-len(_terms(sentences[i]) & query_terms), i))
    return " ".join(sentences[i] for i in sorted(ranked[:keep]))


def extractive_answer(query: str, hits: list[ChunkHit], passages: int, sentences_per_passage: int = 2) -> str:
    """The answer text, each excerpt followed by its citation number [n] (1-based, as in `citations`)."""
    if not hits:
        return NO_MATCH
    terms = _terms(query)
    parts = [
        f"{best_sentences(hit.text, terms, sentences_per_passage)} [{n}]" for n, hit in enumerate(hits[:passages], 1)
    ]
    return "\n\n".join(parts)
