"""Input checks shared by the request models, and prompt-injection flagging of questions."""

from __future__ import annotations

import logging
import re

from query_api import metrics
from schemas.bounds import line_problem, text_problem

__all__ = ["flag_prompt_injection", "injection_patterns", "line_problem", "text_problem"]

log = logging.getLogger(__name__)

# Phrases that try to turn a question into instructions for the model. A match is flagged (metric and log) and the
# question is still answered: retrieved text reaches the LLM as quoted JSON data, and the system prompt says so.
INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    "ignore_instructions": re.compile(
        r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|any|your|the)\b"
        r".{0,20}\b(instructions?|prompts?|rules?|directions?|context)\b",
        re.IGNORECASE | re.DOTALL,
    ),
    "reveal_prompt": re.compile(
        r"\b(reveal|show|print|repeat|output|leak)\b.{0,30}\b(system|hidden|initial|original)\s+(prompt|instructions?)",
        re.IGNORECASE | re.DOTALL,
    ),
    "role_override": re.compile(
        r"\byou are (now|no longer)\b|\bact as (an? )?(unfiltered|unrestricted|jailbroken|dan)\b|\bdeveloper mode\b",
        re.IGNORECASE,
    ),
    "fake_role_tag": re.compile(
        r"<\s*/?\s*(system|assistant|instructions?)\s*>|\[/?INST\]|^\s*(system|assistant)\s*:",
        re.IGNORECASE | re.MULTILINE,
    ),
}


def injection_patterns(query: str) -> list[str]:
    """Names of the prompt-injection patterns a question matches."""
    return [name for name, pattern in INJECTION_PATTERNS.items() if pattern.search(query)]


def flag_prompt_injection(query: str, tenant: str) -> list[str]:
    """Count and log a question that looks like a prompt injection; returns the matched pattern names."""
    matched = injection_patterns(query)
    for name in matched:
        metrics.PROMPT_INJECTION.labels(name).inc()
    if matched:
        log.warning("possible prompt injection from tenant %s (%s): %r", tenant, ", ".join(matched), query[:200])
    return matched
