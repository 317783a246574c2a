"""How well an answer is backed by the passages it cites, and whether it holds a judged question's facts.

Measurable definitions (bench/answers_llm.py, docs/benchmarks.md):
- a sentence's content words are its words of 3+ letters that are not stop words, [n] markers removed;
- a sentence is supported when at least SUPPORTED_SHARE of its content words appear in the passages it cites (the
  [n] markers after it; all of the answer's cited passages when none follow it, every listed passage when the
  answer cites nothing), a cited passage standing for every listed passage of its document;
- an answer's support is the share of its sentences that are supported;
- an answer holds a fact when it contains any of the fact's phrasings (case-insensitive);
- an answer abstains when it says it does not know (ABSTAIN phrases).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from query_api.sentences import split_sentences

SUPPORTED_SHARE = 0.8
_MARKER = re.compile(r"\[(\d+)\]")
_MARKERS = re.compile(r"(?:\s*\[\d+\])+")
_WORD = re.compile(r"[a-z][a-z0-9_.-]*[a-z0-9]|[a-z]")
STOP_WORDS = frozenset((
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our", "out",
    "has", "have", "his", "how", "its", "may", "new", "now", "see", "two", "who", "did", "does", "get", "got", "let",
    "put", "say", "she", "too", "use", "via", "way", "what", "when", "where", "which", "while", "with", "this",
    "that", "these", "those", "then", "than", "there", "their", "them", "they", "from", "into", "onto", "over",
    "under", "upon", "also", "only", "each", "both", "more", "most", "some", "such", "very", "will", "would",
    "could", "should", "about", "after", "before", "being", "been", "here", "just", "like", "make", "makes", "made",
    "much", "many", "other", "same", "your", "yours", "it's", "don't", "doesn't", "isn't", "i'm",
))  # fmt: skip
ABSTAIN = ("do not know", "don't know", "does not contain", "do not contain", "doesn't contain", "not mentioned",
           "no information", "cannot answer", "can't answer", "not in the sources")  # fmt: skip


def content_words(text: str) -> set[str]:
    """Words of 3+ letters that carry content (markers and stop words left out)."""
    words = _WORD.findall(_MARKER.sub(" ", text).casefold())
    return {w for w in words if len(w) >= 3 and w not in STOP_WORDS}


def sentence_support(sentence: str, passages: str) -> float:
    """Share of the sentence's content words found in `passages` (1.0 for a sentence with none)."""
    words = content_words(sentence)
    if not words:
        return 1.0
    return len(words & content_words(passages)) / len(words)


def cited_numbers(text: str, listed: int) -> list[int]:
    """The [n] markers of `text` that name one of the `listed` passages."""
    return [int(n) for n in _MARKER.findall(text) if 1 <= int(n) <= listed]


def cited_segments(answer: str, listed: int) -> list[tuple[str, list[int]]]:
    """(text, the passages it cites) for each stretch of the answer followed by markers; a stretch followed by
    none cites whatever the whole answer cites (every listed passage if it cites nothing)."""
    everything = cited_numbers(answer, listed) or list(range(1, listed + 1))
    segments, last = [], 0
    for found in _MARKERS.finditer(answer):
        segments.append((answer[last : found.start()], cited_numbers(found.group(0), listed) or everything))
        last = found.end()
    segments.append((answer[last:], everything))
    return segments


def answer_support(answer: str, passages: Sequence[tuple[str, str]]) -> dict[str, float | int]:
    """Sentences, supported sentences and their share for `answer` over its listed (doc_id, text) `passages`
    ([n] is passages[n-1]); a sentence is checked against every listed passage of the documents it cites (an
    extractive sentence may span two overlapping passages of one document and cite the better ranked)."""
    total = supported = 0
    for text, numbers in cited_segments(answer, len(passages)):
        docs = {passages[n - 1][0] for n in numbers}
        cited = " ".join(body for doc, body in passages if doc in docs)
        for sentence in split_sentences(text.strip()):
            if not content_words(sentence):
                continue
            total += 1
            supported += sentence_support(sentence, cited) >= SUPPORTED_SHARE
    return {"sentences": total, "supported": supported, "support": round(supported / total, 3) if total else 0.0}


def facts_held(answer: str, facts: Sequence[Sequence[str]]) -> int:
    """How many facts the answer holds (a fact: alternative phrasings, any of which counts)."""
    text = answer.casefold()
    return sum(any(phrase.casefold() in text for phrase in fact) for fact in facts)


def abstains(answer: str) -> bool:
    """The answer says it does not know."""
    text = answer.casefold().replace("’", "'")
    return any(phrase in text for phrase in ABSTAIN)
