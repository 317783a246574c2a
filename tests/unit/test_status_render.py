"""`ragbus status` output: what an operator reads, including the parts that could not be read."""

from __future__ import annotations

from ragbus.status import PipelineStatus, render


def test_render_shows_topics_lag_dead_letters_cache_ratio_and_index() -> None:
    status = PipelineStatus(
        topics={"acme.documents.v1": {0: 5, 1: 7}, "acme.dlq.chunker.v1": "missing"},
        lag={"chunker": {0: 0, 1: 2}, "embedder": {0: 0}, "indexer": "unavailable: Kafka down"},
        dead_letters={"chunker": 1, "embedder": 0, "indexer": 0},
        alias="acme_chunks",
        alias_target="acme_chunks_v2",
        chunks=42,
        embedding_cache=(30, 10),
    )
    lines = render(status).splitlines()
    documents = next(line for line in lines if line.startswith("acme.documents.v1"))
    assert documents.split()[1:] == ["2", "12"]  # partitions, records written
    assert any(line.startswith("acme.dlq.chunker.v1") and line.endswith("missing") for line in lines)
    chunker = next(line for line in lines if line.startswith("chunker"))
    assert chunker.split()[1] == "2" and chunker.split()[-1] == "1"  # lag 2, one pending dead letter
    assert any(line.startswith("indexer") and "unavailable: Kafka down" in line for line in lines)
    assert "embedding cache  hit ratio 0.75 (30 of 40 lookups)" in lines
    assert "index     alias acme_chunks -> acme_chunks_v2, 42 chunks" in lines


def test_cache_ratio_before_any_lookup_and_when_redis_is_down() -> None:
    assert PipelineStatus().embedding_cache_hit_ratio is None
    assert "embedding cache  no lookups yet" in render(PipelineStatus())
    down = PipelineStatus(embedding_cache="unavailable: Redis down")
    assert down.embedding_cache_hit_ratio is None
    assert "embedding cache  unavailable: Redis down" in render(down)


def test_render_lists_running_sources_or_says_there_are_none() -> None:
    assert "sources   none running (ragbus watch, ragbus source ...)" in render(PipelineStatus())
    shown = render(PipelineStatus(sources=["watch     running    3 events ..."])).splitlines()
    assert shown[-2:] == ["sources", "  watch     running    3 events ..."]
