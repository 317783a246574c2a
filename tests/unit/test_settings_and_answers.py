"""Settings fail fast with the variable's name; extractive answers cite what they quote; expressions are escaped."""

from __future__ import annotations

import pytest

from query_api.extractive import NO_MATCH, extractive_answer
from query_api.models import QueryRequest
from ragbus.errors import ConfigError
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.rows import ChunkHit
from ragbus.settings import load_settings


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGBUS_CHUNK_OVERLAP", "300")
    with pytest.raises(ConfigError, match="RAGBUS_CHUNK_OVERLAP"):
        load_settings()
    monkeypatch.setenv("RAGBUS_CHUNK_OVERLAP", "10")
    monkeypatch.setenv("RAGBUS_KAFKA_PARTITIONS", "zero")
    with pytest.raises(ConfigError, match="RAGBUS_KAFKA_PARTITIONS"):
        load_settings()


def test_missing_bootstrap_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGBUS_KAFKA_BOOTSTRAP", raising=False)
    with pytest.raises(ConfigError, match="RAGBUS_KAFKA_BOOTSTRAP"):
        _ = load_settings().kafka_bootstrap


def hit(n: int, text: str) -> ChunkHit:
    return ChunkHit(f"c{n}", f"d{n}", 1, "default", f"T{n}", text, 0, "", 0.9 - n / 10)


def test_extractive_answer_quotes_the_best_sentences_and_cites_them() -> None:
    hits = [
        hit(1, "Unrelated opening. Run the tests with make test. Another aside. And a fourth one."),
        hit(2, "The indexer writes to Milvus."),
    ]
    answer = extractive_answer("How do I run the tests?", hits, passages=2, sentences_per_passage=1)
    assert answer.splitlines()[0] == "Run the tests with make test. [1]"
    assert answer.endswith("The indexer writes to Milvus. [2]")
    assert extractive_answer("anything", [], passages=3) == NO_MATCH


def test_extractive_answer_leaves_out_passages_far_below_the_best() -> None:
    best, weak = hit(1, "The koala eats eucalyptus leaves."), hit(2, "The koi eats pellets.")
    weak = ChunkHit(**{**weak.__dict__, "score": best.score * 0.6})
    answer = extractive_answer("What does the koala eat?", [best, weak], passages=3)
    assert answer == "The koala eats eucalyptus leaves. [1]"


@pytest.mark.parametrize("value", ['a"b', "a\\b", 'x" or tenant != "', "end\\"])
def test_milvus_string_literals_cannot_break_out(value: str) -> None:
    literal = milvus_str(value)
    assert literal.startswith('"') and literal.endswith('"')
    body = literal[1:-1]
    # every quote inside is escaped by an odd run of backslashes
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        assert body[i] != '"'
        i += 1


@pytest.mark.parametrize("query", ["", "   \n\t", "bad\x00byte", "bell\x07", "lone \ud800 surrogate", "x" * 2001])
def test_bad_queries_are_refused(query: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - pydantic's ValidationError is a ValueError
        QueryRequest(query=query)


def test_markdown_is_split_into_prose_sentences() -> None:
    from query_api.extractive import split_sentences

    passage = (
        "## Run the tests\n\n`make test` installs what the tests need, starts the servers\nthey need and runs the "
        "suite. It takes minutes.\n\n```\nmake run   # comment\n```\n| a | b |\n|---|---|\n    ragbus query x\n"
    )
    assert split_sentences(passage) == [
        "`make test` installs what the tests need, starts the servers they need and runs the suite.",
        "It takes minutes.",
        "| a | b |",
        "ragbus query x",
    ]


def test_configuration_reference_is_generated_from_the_settings() -> None:
    from pathlib import Path

    from ragbus.config_reference import render

    page = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert page.read_text() == render(), "run: python -m ragbus.config_reference > docs/configuration.md"
    assert "`RAGBUS_KAFKA_BOOTSTRAP`" in render()
    assert "`RAGBUS_CHUNK_MAX_DOCUMENT_CHARS` | `200000`" in render()
