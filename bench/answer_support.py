"""How well an answer is backed by the passages it cites, and whether it holds a judged question's facts.

Measurable definitions (bench/answers_llm.py, docs/benchmarks.md):
- a sentence's content words are its words of 3+ letters that are not stop words, [n] markers removed;
- a sentence is supported when at least SUPPORTED_SHARE of its content words appear in the passages it cites
  (the answer's cited passages when it cites none itself, every listed passage when the answer cites nothing);
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


def answer_support(answer: str, passages: Sequence[str]) -> dict[str, float | int]:
    """Sentences, supported sentences and their share for `answer` over its listed `passages` ([n] is n-1)."""
    sentences = [s for s in split_sentences(answer.strip()) if content_words(s)]
    everything = cited_numbers(answer, len(passages)) or list(range(1, len(passages) + 1))
    supported = 0
    for sentence in sentences:
        own = cited_numbers(sentence, len(passages)) or everything
        if sentence_support(sentence, " ".join(passages[n - 1] for n in own)) >= SUPPORTED_SHARE:
            supported += 1
    return {
        "sentences": len(sentences),
        "supported": supported,
        "support": round(supported / len(sentences), 3) if sentences else 0.0,
    }


def facts_held(answer: str, facts: Sequence[Sequence[str]]) -> int:
    """How many facts the answer holds (a fact: alternative phrasings, any of which counts)."""
    text = answer.casefold()
    return sum(any(phrase.casefold() in text for phrase in fact) for fact in facts)


def abstains(answer: str) -> bool:
    """The answer says it does not know."""
    text = answer.casefold().replace("’", "'")
    return any(phrase in text for phrase in ABSTAIN)
