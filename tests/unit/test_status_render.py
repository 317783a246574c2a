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


def test_an_error_shared_by_every_cell_is_printed_once() -> None:
    """Kafka unreachable: every topic, lag and DLQ cell has the same reason; it is read once, not sixteen times."""
    error = "unavailable: RAGBUS_KAFKA_BOOTSTRAP is not set"
    status = PipelineStatus(
        topics={f"t.{n}": error for n in range(10)},
        lag=dict.fromkeys(("chunker", "embedder", "indexer"), error),
        dead_letters=dict.fromkeys(("chunker", "embedder", "indexer"), error),
        chunks="unavailable: RAGBUS_MILVUS_URI is not set",
    )
    text = render(status)
    assert text.count(error) == 1, text
    assert text.count("RAGBUS_MILVUS_URI is not set") == 1
    assert "(same error as above)" in text


def test_render_says_which_retrieval_each_deployment_serves_and_why() -> None:
    from ragbus.milvus.retrieval_mode import RetrievalMode

    down = "unavailable: Milvus at http://b:19530 failed"
    status = PipelineStatus(
        chunks=down,
        retrieval=[
            RetrievalMode("http://a:19530", "dense-only", "collection c_v1 has no BM25 field: Milvus v2.4.17 has ..."),
            RetrievalMode("http://b:19530", "unknown", down),
        ],
    )
    lines = render(status).splitlines()
    assert "retrieval http://a:19530: dense-only (collection c_v1 has no BM25 field: Milvus v2.4.17 has ...)" in lines
    assert "retrieval http://b:19530: unknown ((same error as above))" in lines


def test_the_api_status_report_shows_the_retrieval_mode() -> None:
    from ragbus.status_report import RetrievalOut, StatusReport, render_report

    report = StatusReport(
        tenant="acme", generated_at=0.0, alias="a", lag={}, dead_letters=[], pipelines=[],
        retrieval=[RetrievalOut(mode="hybrid", reason="collection a_v1 has the BM25 field")],
    )  # fmt: skip
    assert "retrieval hybrid (collection a_v1 has the BM25 field)" in render_report(report).splitlines()


def test_servers_before_milvus_2_5_are_told_apart_by_their_version() -> None:
    from ragbus.milvus.retrieval_mode import predates_bm25

    assert predates_bm25("v2.3.5") and predates_bm25("v2.4.17") and predates_bm25("2.4.0-rc.1")
    assert not any(map(predates_bm25, ["v2.5.16", "v2.6.16", "v3.0.0", "milvus_lite-3.2.2", "milvus_lite", ""]))


def test_freshness_percentiles_are_nearest_rank_and_the_report_line_says_what_it_covers() -> None:
    from ragbus.freshness_window import FreshnessOut, percentile
    from ragbus.status_report import _freshness_line

    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50.0, 95.0)
    line = _freshness_line(FreshnessOut(documents=4, p50_s=0.5, p95_s=1.25))
    assert line == "freshness p50 0.50s p95 1.25s over 4 changes in the last 15 min"
    assert "no change became searchable" in _freshness_line(FreshnessOut())
    assert _freshness_line(FreshnessOut(error="unavailable: down")) == "freshness unavailable: down"
