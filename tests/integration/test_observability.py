"""A real Prometheus scrapes the running pipeline and the API; the lag gauge reports a real backlog."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY

from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage, ensure_topics
from ragbus.settings import load_settings
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from schemas.topics import STAGES, PipelineTopics, Topics
from tests.corpus import corpus
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import Pipeline, environment, pipeline_env, running_pipeline, wait_for
from workers.lag_monitor import export_lag_once

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _promql(prometheus: str, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {sample["metric"].get(label, ""): float(sample["value"][1]) for sample in result}


@pytest.fixture(scope="module")
def observed(base_servers: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    """A pipeline whose workers export lag every second."""
    env = pipeline_env(
        base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"], RAGBUS_WORKER_LAG_INTERVAL_S="1"
    )
    with running_pipeline(env, stack_home) as pipeline:
        yield pipeline


@pytest.fixture(scope="module")
def api_url(observed: Pipeline, stack_home: Path) -> Iterator[str]:
    """The query API as its own process, as production runs it."""
    port = free_port()
    env = {**observed.env, "RAGBUS_API_PORT": str(port), "RAGBUS_API_AUTH": "off"}
    api = ManagedProcess("api", [sys.executable, "-m", "ragbus", "api"], stack_home / f"api-{port}.log", env).start()
    url = f"http://127.0.0.1:{port}"
    try:
        api.wait_ready(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, timeout_s=180)
        yield url
    finally:
        stop_all([api], timeout_s=10)


@pytest.fixture(scope="module")
def prometheus(
    observed: Pipeline, api_url: str, stack_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The `prometheus` binary scraping the workers and the API every second, with ragbus's alert rules."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is missing in CI: .ci/run installs it (apt-get install prometheus)")
        pytest.skip("prometheus not installed (apt-get install prometheus; .ci/run installs it)")
    home = tmp_path_factory.mktemp("prometheus")
    shutil.copy(ROOT / "infra" / "prometheus" / "alerts.yml", home / "alerts.yml")
    workers = [f"127.0.0.1:{observed.metrics_ports[stage]}" for stage in STAGES]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": "ragbus-workers", "static_configs": [{"targets": workers}]},
            {
                "job_name": "ragbus-api",
                "metrics_path": "/metrics",  # served as is, no redirect to /metrics/
                "static_configs": [{"targets": [api_url.removeprefix("http://")]}],
            },
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    argv = [
        binary,
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    server = ManagedProcess("prometheus", argv, home / "prometheus.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, timeout_s=60)
        yield url
    finally:
        stop_all([server], timeout_s=10)


def test_prometheus_scrapes_every_stage_and_the_api(observed: Pipeline, api_url: str, prometheus: str) -> None:
    events = corpus()[:6]
    wait_indexed(observed, dict(publish(observed, events)))
    answer = httpx.post(f"{api_url}/v1/query", json={"query": "What does the axolotl eat?", "top_k": 3}, timeout=30)
    assert answer.status_code == 200, answer.text
    prefix = observed.settings.kafka.topic_prefix

    def scraped_everything() -> bool:
        processed = _by(_promql(prometheus, 'sum by (stage) (ragbus_stage_messages_total{outcome="ok"})'), "stage")
        fresh = _promql(prometheus, "sum(ragbus_freshness_seconds_count)")
        queries = _promql(prometheus, "sum(ragbus_queries_total)")
        return (
            all(processed.get(stage, 0) >= len(events) for stage in STAGES)
            and bool(fresh)
            and float(fresh[0]["value"][1]) >= len(events)
            and bool(queries)
            and float(queries[0]["value"][1]) >= 1
        )

    wait_for(scraped_everything, timeout_s=180, interval_s=1, message="Prometheus to scrape the processed documents")
    up = _promql(prometheus, "up")
    assert len(up) == len(STAGES) + 1  # the workers and the API
    assert all(float(sample["value"][1]) == 1 for sample in up), up

    # Batch size and latency per stage, and embedding cache lookups, as scraped.
    batches = _by(_promql(prometheus, "sum by (stage) (ragbus_stage_batch_seconds_count)"), "stage")
    assert all(batches.get(stage, 0) >= 1 for stage in STAGES)
    sizes = _by(_promql(prometheus, "sum by (stage) (ragbus_stage_batch_size_sum)"), "stage")
    assert all(sizes.get(stage, 0) >= len(events) for stage in STAGES)
    lookups = _by(_promql(prometheus, "sum by (result) (ragbus_embedding_cache_total)"), "result")
    assert lookups.get("miss", 0) + lookups.get("hit", 0) > 0

    # Lag per partition of every stage's input topic, drained to 0 once everything is committed.
    partitions = observed.settings.kafka.partitions
    names = PipelineTopics(Topics(prefix))

    def lag_drained() -> bool:
        lag = _promql(prometheus, "ragbus_consumer_lag_messages")
        per_stage = {stage: [s for s in lag if s["metric"]["stage"] == stage] for stage in STAGES}
        # Both lanes' input topics (live and bulk), every partition of each.
        return all(
            len(samples) == 2 * partitions
            and {s["metric"]["topic"] for s in samples} == set(names.input_topics(stage))
            and {s["metric"]["group"] for s in samples} == {f"{prefix}.{stage}"}
            and all(float(s["value"][1]) == 0 for s in samples)
            for stage, samples in per_stage.items()
        )

    wait_for(lag_drained, timeout_s=120, interval_s=1, message="lag gauges of every partition to reach 0")

    # The alert and recording rules load and evaluate against the real series without errors.
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    evaluated = [rule for group in rules for rule in group["rules"]]
    assert len(evaluated) >= 10
    assert all(rule["health"] == "ok" for rule in evaluated), [r for r in evaluated if r["health"] != "ok"]
    # The recording rule catches up with the raw gauges at its next evaluation.
    wait_for(
        lambda: set(_by(_promql(prometheus, "ragbus:consumer_lag:sum"), "stage")) == set(STAGES),
        timeout_s=60,
        interval_s=1,
        message="the lag recording rule to cover every stage",
    )
    firing = {a["metric"]["alertname"] for a in _promql(prometheus, 'ALERTS{alertstate="firing"}')}
    assert not firing & {"StageStalled", "ConsumerLagHigh", "WorkerDown", "DeadLettersGrowing"}

    # Every Grafana panel's query is valid PromQL on the real server; the pipeline panels show data. A rate() needs
    # two scrapes inside its window: a run that got here within a second of the first scrape of a series (one CI run
    # did) sees none yet, so the panels that must show data are waited for, bounded.
    dashboard = json.loads((ROOT / "infra" / "grafana" / "dashboards" / "ragbus.json").read_text())
    targets = [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]
    must_show = {"Messages/s by stage and outcome", "Consumer lag by group and partition", "Mean batch size by stage"}
    assert must_show <= {title for title, _ in targets}
    empty: set[str] = set()

    def panels_show_data() -> bool:
        empty.clear()
        for title, expr in targets:
            response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
            assert response.status_code == 200, (title, response.text)
            if not response.json()["data"]["result"]:
                empty.add(title)
        return not must_show & empty

    wait_for(panels_show_data, timeout_s=30, interval_s=1, message="the pipeline panels to show data")


def test_lag_gauge_counts_uncommitted_records_per_partition(base_servers: dict[str, str]) -> None:
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    with environment(env):
        settings = load_settings()
    topic = Topics(settings.kafka.topic_prefix).chunks
    group = f"{settings.kafka.topic_prefix}.embedder"

    async def scenario() -> dict[int, int]:
        await ensure_topics(settings, [topic])
        async with KafkaEventProducer(settings) as producer:
            # Keys spread the records over partitions; nobody consumes them, so all of them are lag.
            await producer.send_all([OutboundMessage(topic, f"doc-{i}".encode(), b"{}") for i in range(7)])
        return await export_lag_once(settings, "embedder", topic, group)

    lag = asyncio.run(scenario())
    assert sum(lag.values()) == 7
    assert set(lag) == set(range(settings.kafka.partitions))
    for partition, behind in lag.items():
        gauge = REGISTRY.get_sample_value(
            "ragbus_consumer_lag_messages",
            {"stage": "embedder", "group": group, "topic": topic, "partition": str(partition)},
        )
        assert gauge == behind


def test_status_shows_topics_dlq_depth_and_the_embedding_cache_hit_ratio(observed: Pipeline) -> None:
    from ragbus.status import collect_status

    settings = observed.settings
    events = corpus()[6:10]
    before = asyncio.run(collect_status(settings)).embedding_cache
    wait_indexed(observed, dict(publish(observed, events)))
    first = asyncio.run(collect_status(settings)).embedding_cache
    wait_indexed(observed, dict(publish(observed, events)))  # new versions of the same text: all cache hits
    observed.wait_drained()
    status = asyncio.run(collect_status(settings))
    assert isinstance(before, tuple) and isinstance(first, tuple) and isinstance(status.embedding_cache, tuple)
    lookups_first_pass = sum(first) - sum(before)
    assert lookups_first_pass > 0
    assert status.embedding_cache[1] == first[1]  # no new misses
    assert status.embedding_cache[0] - first[0] == lookups_first_pass  # every lookup of the second pass hit

    topics = Topics(settings.kafka.topic_prefix)
    documents = status.topics[topics.documents]
    assert isinstance(documents, dict) and len(documents) == settings.kafka.partitions
    assert sum(documents.values()) >= 2 * len(events)
    assert set(status.topics) == set(topics.all())
    # Every topic exists (the pipeline created them all): each shows its partitions, none reads "missing".
    assert all(isinstance(ends, dict) and len(ends) >= 1 for ends in status.topics.values()), status.topics
    assert status.dead_letters == dict.fromkeys(STAGES, 0)

    shown = subprocess.run(
        [sys.executable, "-m", "ragbus", "status"],
        env={**os.environ, **observed.env}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert topics.documents in shown.stdout
    assert "missing" not in shown.stdout, shown.stdout
    ratio = status.embedding_cache[0] / sum(status.embedding_cache)
    assert f"embedding cache  hit ratio {ratio:.2f}" in shown.stdout
    for stage in STAGES:
        row = next(line for line in shown.stdout.splitlines() if line.startswith(stage))
        assert row.split()[1] == "0" and row.split()[-1] == "0", row  # no lag, no pending dead letters


def test_a_poison_message_is_counted_as_failed_and_fires_dead_letters_growing(
    observed: Pipeline, prometheus: str
) -> None:
    settings = observed.settings
    topic = Topics(settings.kafka.topic_prefix).documents

    async def send_poison() -> None:
        async with KafkaEventProducer(settings) as producer:
            await producer.send_all([OutboundMessage(topic, b"poison.md", b"{not json")])

    asyncio.run(send_poison())

    def failed_and_alerting() -> bool:
        failed = _by(
            _promql(prometheus, 'sum by (stage) (ragbus_stage_messages_total{outcome="dead_lettered"})'), "stage"
        )
        alerts = _promql(prometheus, 'ALERTS{alertname="DeadLettersGrowing",alertstate="firing"}')
        return failed.get("extractor") == 1 and any(a["metric"].get("stage") == "extractor" for a in alerts)

    wait_for(failed_and_alerting, timeout_s=180, interval_s=1, message="the dead letter counted and alerted")
    alert = _promql(prometheus, 'ALERTS{alertname="DeadLettersGrowing",alertstate="firing"}')[0]["metric"]
    assert alert["code"] == "invalid_message"
    assert alert["severity"] == "warn"
