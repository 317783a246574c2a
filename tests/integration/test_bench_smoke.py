"""The benchmark harness, tiny: 30 SciFact abstracts, 5 queries, a few probes and requests (not a speed test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bench import freshness, latency, quality
from bench.api_process import start_api
from bench.run import index
from bench.scifact import DATASET, SciFact, load_scifact
from query_api.app import create_app
from ragbus.settings import EvalSettings
from ragbus.stack.process import stop_all
from schemas.documents import DocumentEvent
from tests.integration.test_reindex import ragbus_cli
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def scifact() -> SciFact:
    if not (DATASET / "corpus.jsonl").exists():
        pytest.skip(f"SciFact is not at {DATASET} (the shared datasets folder beside the project)")
    return load_scifact(docs=30, queries=5)


@pytest.fixture(scope="module")
def bench_api(base_servers: dict[str, str], stack_home: Path, scifact: SciFact) -> Iterator[tuple[Pipeline, str]]:
    """Its own deployment on milvus-lite with SciFact indexed, and the API as a process in front of it."""
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    with running_pipeline(env, stack_home) as pipeline:
        asyncio.run(index(pipeline.settings, scifact.documents))
        api, url = start_api(pipeline.env, stack_home)
        try:
            yield pipeline, url
        finally:
            stop_all([api], timeout_s=10)


def test_quality_is_scored_against_the_qrels(bench_api: tuple[Pipeline, str], scifact: SciFact) -> None:
    _, url = bench_api
    with httpx.Client(base_url=url) as client:
        result = quality.evaluate(client, scifact)
    assert result["queries"] == 5
    assert result["documents"] == 30
    assert 0.0 <= float(result["ndcg_at_10"]) <= 1.0  # type: ignore[arg-type]
    assert 0.0 <= float(result["recall_at_100"]) <= 1.0  # type: ignore[arg-type]
    # Every indexed document is ranked: the API returned all 30 behind the best ones.
    assert result["min_distinct_documents_ranked"] == 30


def write_judged_set(root: Path, data: SciFact) -> Path:
    """The slice's queries and judgments in the BEIR layout `ragbus eval` reads."""
    (root / "qrels").mkdir(parents=True)
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in data.queries.items())
    )
    rows = "".join(f"{q}\t{doc}\t{grade}\n" for q, judged in data.qrels.items() for doc, grade in judged.items())
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return root


def test_ragbus_eval_and_the_scheduled_evaluation_reproduce_the_bench_figure(
    bench_api: tuple[Pipeline, str], scifact: SciFact, tmp_path: Path
) -> None:
    pipeline, url = bench_api
    with httpx.Client(base_url=url) as client:
        recorded = quality.evaluate(client, scifact)
    judged = str(write_judged_set(tmp_path / "scifact-slice", scifact))

    via_api = ragbus_cli(pipeline, "eval", judged, "--api-url", url, "--json")
    assert via_api.returncode == 0, via_api.stderr
    figures = json.loads(via_api.stdout)
    assert figures["queries"] == 5
    assert figures["ndcg_at_10"] == recorded["ndcg_at_10"]
    assert figures["recall_at_100"] == recorded["recall_at_100"]
    assert 0.0 <= figures["mrr_at_10"] <= 1.0 and 0.0 <= figures["recall_at_10"] <= 1.0
    assert len(figures["worst"]) == 5

    direct = ragbus_cli(pipeline, "eval", judged, "--direct")  # the served collection, searched as the API does
    assert direct.returncode == 0, direct.stderr
    assert f"nDCG@10 {recorded['ndcg_at_10']:.4f}" in direct.stdout, direct.stdout
    assert "worst 5 queries by nDCG@10" in direct.stdout

    # The query API's scheduled evaluation exports the same figure.
    settings = pipeline.settings
    scheduled = EvalSettings(judged_dir=Path(judged), set_name="scifact-slice", interval_s=3600)
    with TestClient(create_app(type(settings)(**{**settings.__dict__, "evaluation": scheduled}))) as api:

        def exported() -> float | None:
            for line in api.get("/metrics/").text.splitlines():
                if line.startswith('ragbus_eval_ndcg_at_10{set="scifact-slice"}'):
                    return float(line.split()[-1])
            return None

        wait_for(lambda: exported() is not None, timeout_s=120, message="the scheduled evaluation's figure")
        assert round(exported() or 0.0, 4) == recorded["ndcg_at_10"]


def test_freshness_probes_are_returned_by_the_api(bench_api: tuple[Pipeline, str], scifact: SciFact) -> None:
    pipeline, url = bench_api
    result = asyncio.run(freshness.measure(pipeline.settings, url, scifact.documents, rounds=2, timeout_s=60))
    assert result["probes"] == 2
    assert result["missed"] == 0
    assert 0.0 < float(result["p50_s"]) <= float(result["p95_s"]) < 60  # type: ignore[arg-type]


def test_probes_during_a_bulk_are_published_on_a_schedule(bench_api: tuple[Pipeline, str], scifact: SciFact) -> None:
    pipeline, url = bench_api
    revised = [  # new versions and new text: every chunk is embedded again, as in bench.run's bulk
        DocumentEvent.model_validate(d.model_dump(exclude={"event_id", "version"}) | {"text": d.text + " (revised)"})
        for d in scifact.documents[:10]
    ]

    async def during_bulk() -> dict[str, object]:
        bulk = asyncio.create_task(index(pipeline.settings, revised))
        result = await freshness.measure_during(pipeline.settings, url, scifact.documents[10:], bulk, every_s=0.5)
        await bulk  # the bulk itself was indexed
        return result

    result = asyncio.run(during_bulk())
    assert result["missed"] == 0
    assert int(result["probes"]) >= 1  # type: ignore[call-overload]
    assert float(result["published_every_s"]) >= 0.5  # type: ignore[arg-type]
    assert 0.0 < float(result["p50_s"]) <= float(result["p95_s"]) < 120  # type: ignore[arg-type]


def test_latency_runs_report_cached_and_uncached(bench_api: tuple[Pipeline, str], scifact: SciFact) -> None:
    _, url = bench_api
    questions = [d.title for d in scifact.documents]
    assert len(questions) >= len(latency.MODES) * (2 * 4 + 3), "no question asked twice uncached"
    result = asyncio.run(latency.measure(url, questions, levels=[1, 4], requests=4, repeated=3, cached_requests=6))
    assert set(result) == {"retrieve_only", "extractive_answer"}
    for mode in result.values():
        assert [r["concurrency"] for r in mode["uncached"]] == [1, 4]
        assert all(r["requests"] == 4 and r["cached_share"] == 0.0 for r in mode["uncached"])
        assert all(r["requests"] == 6 and r["cached_share"] == 1.0 for r in mode["cached"])
        for run in mode["uncached"] + mode["cached"]:
            assert 0 < float(run["p50_ms"]) <= float(run["p95_ms"]) <= float(run["p99_ms"])  # type: ignore[arg-type]


def test_the_raw_encode_runs_in_the_pipelines_layout() -> None:
    # No SciFact needed: the model alone, in two processes of one thread, as `bench.ingest --embedders 2`.
    from bench.ingest import raw_encode
    from ragbus.settings import EmbeddingSettings

    texts = [f"passage {i} about receptors in mice " * (1 + i % 5) for i in range(40)]
    timed = raw_encode(texts, EmbeddingSettings(threads=1), processes=2)
    assert 0 < timed["seconds"] < 120
    assert timed["cpu_seconds"] > 0
