"""When the indexer's sealer flushes: after a pause in writes, or after the interval during a long ingest."""

from __future__ import annotations

from typing import Any

from workers.indexer.sealer import IDLE_S, CollectionSealer


def sealer(interval_s: float = 10.0) -> CollectionSealer:
    store: Any = object()  # never called by `due`
    return CollectionSealer(store, "chunks_v1", interval_s)


def test_nothing_written_nothing_due() -> None:
    assert not sealer().due(now=1e9)


def test_due_after_a_pause_in_writes() -> None:
    s = sealer()
    s.wrote()
    last = s._last_write
    assert not s.due(last + IDLE_S / 2)
    assert s.due(last + IDLE_S)


def test_due_after_the_interval_even_while_writing() -> None:
    s = sealer(interval_s=5.0)
    s.wrote()
    first = s._dirty_since
    assert first is not None
    s._last_write = first + 4.9  # writes keep coming
    assert not s.due(first + 4.95)
    assert s.due(first + 5.0)


def test_interval_zero_never_flushes() -> None:
    s = sealer(interval_s=0)
    s.wrote()
    assert not s.due(s._last_write + 100)
    assert s.collections == ["chunks_v1", "chunks_v1_docs"]
