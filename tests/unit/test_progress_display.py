"""Progress displays: plain lines when captured (throttled, final numbers always shown), bars on a terminal."""

from __future__ import annotations

import pytest

from ragbus.cli import reindex as cli_reindex
from ragbus.cli.progress import CountedProgress
from ragbus.reindex_progress import PipelineProgress


def test_plain_lines_are_throttled_and_the_final_numbers_always_shown(capsys: pytest.CaptureFixture[str]) -> None:
    with CountedProgress("sent", 1000, unit="events", interactive=False, every_s=60) as display:
        for sent in range(0, 1001, 100):
            display.update(sent, detail=f"{sent * 10} B")
    lines = capsys.readouterr().out.splitlines()
    # The first numbers, then nothing for a minute, except the completed total.
    assert lines == ["  sent 0/1000 events, 0 B", "  sent 1000/1000 events, 10000 B"]


def test_plain_final_line_is_printed_on_close_but_not_after_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with CountedProgress("read", unit="files", interactive=False, every_s=60) as display:
        display.update(1, detail="1 documents")
        display.update(7, detail="12 documents")
    assert capsys.readouterr().out.splitlines() == ["  read 1 files, 1 documents", "  read 7 files, 12 documents"]

    def send_until_the_broker_fails() -> None:
        with CountedProgress("sent", 10, interactive=False, every_s=60) as failing:
            failing.update(3)
            failing.update(4)
            raise RuntimeError("broker gone")

    with pytest.raises(RuntimeError):
        send_until_the_broker_fails()
    assert capsys.readouterr().out.splitlines() == ["  sent 3/10"]  # the error explains the rest


def test_terminal_bar_draws_counts_and_details(capsys: pytest.CaptureFixture[str]) -> None:
    with CountedProgress("indexed", 4, interactive=True) as display:
        display.update(3, detail="dead-lettered 1")
    out = capsys.readouterr().out
    assert "indexed" in out and "3/4" in out and "dead-lettered 1" in out
    assert "━" in out


def _progress(replayed: int, total: int, lag: int) -> PipelineProgress:
    return PipelineProgress("docs_v2", total, replayed, {"chunker": lag, "embedder": 0, "indexer": 0})


def test_reindex_printer_plain_lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_reindex, "interactive_output", lambda: False)
    printer = cli_reindex._Printer(every_s=60)
    printer(_progress(10, 100, 90), None)
    printer(_progress(50, 100, 50), 12.0)  # within every_s: not printed
    printer(_progress(100, 100, 0), 0.0)  # caught up: always printed
    assert capsys.readouterr().out.splitlines() == [
        "docs_v2: replayed 10/100 document events, lag chunker=90 embedder=0 indexer=0",
        "docs_v2: replayed 100/100 document events, lag chunker=0 embedder=0 indexer=0, ETA 0s",
    ]


def test_reindex_printer_bar_on_a_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_reindex, "interactive_output", lambda: True)
    monkeypatch.setenv("COLUMNS", "160")
    printer = cli_reindex._Printer()
    printer(_progress(40, 100, 60), 30.0)
    printer(_progress(100, 100, 0), 0.0)
    out = capsys.readouterr().out
    assert printer.bar is None  # closed once caught up
    assert "docs_v2" in out and "100/100" in out and "lag chunker=0 embedder=0 indexer=0" in out
    assert "━" in out


def test_on_a_narrow_terminal_the_detail_is_cut_not_the_counts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    with CountedProgress("ragbus_chunks_v2", 1000, unit="documents", interactive=True) as display:
        display.update(1000, detail="lag chunker=0 embedder=0 indexer=0, ETA 0s")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "ragbus_chunks_v2" in last and "1000/1000 documents" in last, last
    assert "━" in last
