"""`ragbus reindex --gate`: a reindex that ranks a judged set worse is refused (serving untouched, the new
collection kept for inspection); one that ranks it as well switches. Both figures are shown."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from ragbus.milvus.collections import MilvusCollectionAdmin
from ragbus.milvus.store import MilvusChunkStore
from ragbus.pipelines import PipelineRegistry
from ragbus.reindex import Reindexer, ReindexOptions
from schemas.documents import DocumentEvent
from schemas.pipelines import PipelineState
from schemas.topics import STAGES
from tests.integration.test_reindex import ragbus_cli
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# Only the title says which harbour a report is about: chunks without the title prefix cannot tell them apart.
HARBOURS = ["Oslo", "Lima", "Cairo", "Perth", "Quebec", "Nairobi", "Osaka", "Bergen"]
_FIGURES = re.compile(r"nDCG@10 (\S+) ([\d.]+), (\S+) ([\d.]+)")


def harbour_report(n: int, harbour: str) -> DocumentEvent:
    text = (
        f"The harbour office counted {20 + n} ships and {3 + n} ferries this week. Dock {n + 1} was closed for "
        "repairs while the cranes were inspected. The pilots reported calm water and light winds on most days. "
        "Cargo handling stayed on schedule, and the night shift cleared the backlog from the previous week."
    )
    return DocumentEvent(doc_id=f"harbours/{harbour.lower()}.md", title=f"Harbour report: {harbour}", text=text)


def write_judged_set(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    queries = [{"_id": f"q{n}", "text": f"weekly harbour report from {h}"} for n, h in enumerate(HARBOURS)]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    rows = "".join(f"q{n}\tharbours/{h.lower()}.md\t1\n" for n, h in enumerate(HARBOURS))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return root


def figures(output: str) -> tuple[str, float, str, float]:
    match = _FIGURES.search(output)
    assert match, output
    return match.group(1), float(match.group(2)), match.group(3), float(match.group(4))


def test_a_worse_reindex_is_refused_and_an_equal_one_switches(
    base_servers: dict[str, str], stack_home: Path, tmp_path: Path
) -> None:
    env = pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"])
    judged = str(write_judged_set(tmp_path / "harbours"))
    with running_pipeline(env, stack_home) as pipeline:
        settings = pipeline.settings
        old = settings.milvus.initial_collection
        wait_indexed(pipeline, dict(publish(pipeline, [harbour_report(n, h) for n, h in enumerate(HARBOURS)])))

        # Tiny chunks without the title prefix: no chunk says which harbour it is about.
        worse = f"{settings.milvus.alias}_tiny"
        asyncio.run(
            Reindexer(settings).start(
                ReindexOptions(chunk_tokens=16, chunk_overlap=0, title_tokens=0, collection=worse)
            )
        )
        start_pipeline_workers(pipeline, worse)
        refused = ragbus_cli(pipeline, "reindex", "--gate", judged, "--max-drop", "0.01", "--timeout", "300")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "not switching: quality gate" in refused.stderr
        serving, serving_ndcg, candidate, candidate_ndcg = figures(refused.stderr)
        assert (serving, candidate) == (old, worse)
        assert serving_ndcg - candidate_ndcg > 0.1, refused.stderr  # past the tolerance the equal case needs
        # Measured 0.7436 against 0.5452: with the title prefix most harbours are found first.
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        try:
            assert store.alias_target() == old  # serving untouched
            assert MilvusCollectionAdmin(store).exists(worse)  # kept for inspection
        finally:
            store.close()
        specs = asyncio.run(PipelineRegistry(settings).load())
        assert specs[worse].state is PipelineState.BUILDING and specs[old].state is PipelineState.SERVING
        # `ragbus eval` shows the same figure for the kept collection.
        inspected = ragbus_cli(pipeline, "eval", judged, "--collection", worse, "--json")
        assert inspected.returncode == 0, inspected.stderr
        assert json.loads(inspected.stdout)["ndcg_at_10"] == round(candidate_ndcg, 4)

        stop_pipeline_workers(pipeline, worse)
        assert ragbus_cli(pipeline, "reindex", "--abandon").returncode == 0

        # The same chunking into a new collection ranks the same: the gate lets it switch.
        equal = f"{settings.milvus.alias}_same"
        asyncio.run(Reindexer(settings).start(ReindexOptions(collection=equal)))
        start_pipeline_workers(pipeline, equal)
        # The reports are near-identical but for the harbour's name, so ties in the fused ranking break by storage
        # order, which differs between collections: one full run of 6 Dec ranked the same chunking 0.6818 against
        # 0.7436. The allowed drop covers that noise and still refuses the worse chunking above (a drop of ~0.2).
        switched = ragbus_cli(pipeline, "reindex", "--gate", judged, "--max-drop", "0.1", "--timeout", "300")
        assert switched.returncode == 0, switched.stdout + switched.stderr
        serving, serving_ndcg, candidate, candidate_ndcg = figures(switched.stdout)
        assert (serving, candidate) == (old, equal)
        assert candidate_ndcg >= serving_ndcg - 0.1
        assert "passed" in switched.stdout
        assert f"switched: alias {settings.milvus.alias} -> {equal}" in switched.stdout
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        try:
            assert store.alias_target() == equal
        finally:
            store.close()


def start_pipeline_workers(pipeline: Pipeline, collection: str) -> None:
    for stage in STAGES:
        pipeline.start_worker(stage, RAGBUS_WORKER_PIPELINE=collection)


def stop_pipeline_workers(pipeline: Pipeline, collection: str) -> None:
    from ragbus.stack.process import stop_all

    stop_all([w for w in pipeline.workers if w.env.get("RAGBUS_WORKER_PIPELINE") == collection], timeout_s=10)
