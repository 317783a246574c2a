"""RAGBUS_STACK_LLM: `ragbus up` starts a local model only when asked and when no endpoint is configured."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ragbus.settings import LLMSettings, StackSettings, load_settings
from ragbus.stack.launcher import EmbeddedStack


def _stack(tmp_path: Path, llm: str, base_url: str | None) -> EmbeddedStack:
    settings = dataclasses.replace(
        load_settings(),
        stack=StackSettings(home=tmp_path, llm=llm),  # type: ignore[arg-type]
        llm=LLMSettings(base_url=base_url),
    )
    return EmbeddedStack(settings, api=False)


def test_off_by_default_the_answers_are_extractive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGBUS_STACK_LLM", raising=False)
    assert StackSettings().llm == "off"
    stack = _stack(tmp_path, "off", None)
    assert stack.start_llm() == {}
    assert stack.servers == []


def test_a_configured_endpoint_wins_over_the_local_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = _stack(tmp_path, "gemma3-270m", "http://llm.example:8080/v1")
    assert stack.start_llm() == {}  # the API keeps RAGBUS_LLM_BASE_URL; nothing started, nothing verified
    assert stack.servers == []
    assert not (tmp_path / "models").exists()
    assert "using the LLM at RAGBUS_LLM_BASE_URL" in capsys.readouterr().out
