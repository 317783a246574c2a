"""Settings fail fast with the variable's name; bad queries are refused; expressions are escaped."""

from __future__ import annotations

import pytest

from query_api.models import QueryRequest
from ragbus.errors import ConfigError
from ragbus.milvus.filters import milvus_str
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


def test_configuration_reference_is_generated_from_the_settings() -> None:
    from pathlib import Path

    from ragbus.config_reference import render

    page = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert page.read_text() == render(), "run: python -m ragbus.config_reference > docs/configuration.md"
    assert "`RAGBUS_KAFKA_BOOTSTRAP`" in render()
    assert "`RAGBUS_CHUNK_MAX_DOCUMENT_CHARS` | `200000`" in render()
