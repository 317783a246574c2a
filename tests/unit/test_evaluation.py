"""Ranking metrics, judged sets in the BEIR layout, evaluation reports and the gate's verdict."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from ragbus.errors import ConfigError, InputError
from ragbus.evaluation import evaluate
from ragbus.judged_set import JudgedSet, load_judged_set
from ragbus.quality_gate import GateVerdict
from ragbus.ranking_metrics import ndcg_at_k, recall_at_k, reciprocal_rank_at_k
from ragbus.scheduled_evaluation import scheduled_evaluation
from ragbus.settings import EvalSettings


def test_metrics_follow_the_trec_eval_definitions() -> None:
    relevant = {"a": 1, "b": 2}
    assert ndcg_at_k(["b", "a", "x"], relevant, 10) == pytest.approx(1.0)
    ideal = 2 + 1 / math.log2(3)
    assert ndcg_at_k(["x", "a", "b"], relevant, 10) == pytest.approx((1 / math.log2(3) + 2 / 2) / ideal)
    assert ndcg_at_k(["x", "y"], relevant, 10) == 0.0
    assert recall_at_k(["x", "a"], relevant, 1) == 0.0
    assert recall_at_k(["x", "a"], relevant, 2) == 0.5
    assert reciprocal_rank_at_k(["x", "y", "b"], relevant, 10) == pytest.approx(1 / 3)
    assert reciprocal_rank_at_k(["x", "y", "b"], relevant, 2) == 0.0


def write_judged(root: Path, qrels: str, queries: str) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "qrels" / "test.tsv").write_text(qrels)
    (root / "queries.jsonl").write_text(queries)
    return root


def test_a_judged_set_keeps_the_queries_with_a_relevant_document(tmp_path: Path) -> None:
    root = write_judged(
        tmp_path / "mini",
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t0\nq3\td3\t2\n",
        '{"_id": "q1", "text": "first"}\n{"_id": "q2", "text": "only judged irrelevant"}\n'
        '{"_id": "q3", "text": "third"}\n{"_id": "q4", "text": "not judged"}\n',
    )
    judged = load_judged_set(root)
    assert judged.name == "mini"
    assert judged.queries == {"q1": "first", "q3": "third"}
    assert judged.qrels == {"q1": {"d1": 1}, "q3": {"d3": 2}}
    assert list(load_judged_set(root, limit=1).queries) == ["q1"]


def test_a_bad_judged_set_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="BEIR layout"):
        load_judged_set(tmp_path)
    root = write_judged(tmp_path / "bad", "query-id\tcorpus-id\tscore\nq1\td1\thigh\n", '{"_id": "q1", "text": "x"}\n')
    with pytest.raises(InputError, match=r"test.tsv:2: the score must be an integer"):
        load_judged_set(root)
    with pytest.raises(InputError, match="choose a split"):
        load_judged_set(root, split="dev")


def test_a_report_has_the_means_and_the_worst_queries_first() -> None:
    judged = JudgedSet("set", {"q1": "one", "q2": "two"}, {"q1": {"d1": 1}, "q2": {"d2": 1}})
    rankings = {"one": ["d1", "x"], "two": ["x", "y", "d2"]}
    seen: list[tuple[int, int]] = []
    report = evaluate(judged, rankings.__getitem__, "collection_x", lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    summary = report.summary()
    assert summary["ndcg_at_10"] == round((1.0 + 1 / math.log2(4)) / 2, 4)
    assert summary["mrr_at_10"] == round((1 + 1 / 3) / 2, 4)
    assert summary["recall_at_100"] == 1.0 and summary["min_documents_ranked"] == 2
    assert [s.query_id for s in report.worst(1)] == ["q2"]


@pytest.mark.parametrize(
    ("serving", "candidate", "passed"), [(0.80, 0.795, True), (0.80, 0.78, False), (0.5, 0.9, True)]
)
def test_the_gate_allows_at_most_the_allowed_drop(serving: float, candidate: float, passed: bool) -> None:
    verdict = GateVerdict("set", "old", "new", serving, candidate, max_drop=0.01)
    assert verdict.passed is passed
    assert f"old {serving:.4f}" in verdict.render() and f"new {candidate:.4f}" in verdict.render()


async def test_the_scheduled_evaluation_is_off_by_default_and_a_bad_set_fails_at_start(tmp_path: Path) -> None:
    async def rank(query: str) -> list[str]:
        return []

    assert EvalSettings().judged_dir is None
    async with scheduled_evaluation(EvalSettings(), rank) as job:
        assert job is None
    with pytest.raises(ConfigError, match="RAGBUS_EVAL_JUDGED_DIR"):
        async with scheduled_evaluation(EvalSettings(judged_dir=tmp_path), rank):
            pass


async def test_a_scheduled_run_exports_the_figures_under_the_set_label(tmp_path: Path) -> None:
    root = write_judged(tmp_path / "mini", "query-id\tcorpus-id\tscore\nq1\td1\t1\n", '{"_id": "q1", "text": "one"}\n')

    async def rank(query: str) -> list[str]:
        return ["x", "d1"]

    settings = EvalSettings(judged_dir=root, set_name="unit-mini", interval_s=3600)
    async with scheduled_evaluation(settings, rank) as job:
        assert job is not None
        await job.run_once()
    assert REGISTRY.get_sample_value("ragbus_eval_ndcg_at_10", {"set": "unit-mini"}) == pytest.approx(1 / math.log2(3))
    assert REGISTRY.get_sample_value("ragbus_eval_recall_at_100", {"set": "unit-mini"}) == 1.0
