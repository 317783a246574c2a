"""Retrieval quality of a named collection, and the gate a reindex passes before its alias moves.

The gate ranks a judged set's queries on the served collection and on the new one, each with its own pipeline's
embedding model, and refuses the switch when the new nDCG@10 is lower by more than the allowed drop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial

from ragbus.errors import PermanentError, RagbusError
from ragbus.evaluation import CollectionRanker, EvaluationReport, ProgressCallback, evaluate
from ragbus.judged_set import JudgedSet
from ragbus.milvus.store import MilvusChunkStore
from ragbus.pipelines import PipelineRegistry, with_spec
from ragbus.settings import EmbeddingSettings, Settings
from schemas.pipelines import PipelineSpec

log = logging.getLogger(__name__)


class QualityGateRefused(PermanentError):
    """The new collection ranks the judged set worse than the served one by more than allowed."""

    code = "quality_gate_refused"


@dataclass(frozen=True)
class QualityGate:
    """A judged set and how much lower the new collection's nDCG@10 may be (absolute)."""

    judged: JudgedSet
    max_drop: float = 0.01


@dataclass(frozen=True)
class GateVerdict:
    """Both collections' nDCG@10 on the judged set, and whether the switch may happen."""

    judged_set: str
    serving: str
    candidate: str
    serving_ndcg: float
    candidate_ndcg: float
    max_drop: float

    @property
    def drop(self) -> float:
        """How much lower the candidate's nDCG@10 is (negative: it is better)."""
        return self.serving_ndcg - self.candidate_ndcg

    @property
    def passed(self) -> bool:
        """Whether the candidate may serve."""
        return round(self.drop, 6) <= self.max_drop

    def render(self) -> str:
        """One line with both figures."""
        return (
            f"quality gate on {self.judged_set}: nDCG@10 {self.serving} {self.serving_ndcg:.4f}, "
            f"{self.candidate} {self.candidate_ndcg:.4f} (drop {self.drop:+.4f}, allowed {self.max_drop:.4f}): "
            + ("passed" if self.passed else "refused")
        )


async def evaluate_collection(
    settings: Settings,
    judged: JudgedSet,
    collection: str | None = None,
    *,
    tenant: str = "default",
    on_progress: ProgressCallback | None = None,
) -> EvaluationReport:
    """The judged set ranked on `collection` (default: the one the alias serves), with its pipeline's model."""
    if collection is None:
        collection = await asyncio.to_thread(_alias_target, settings)
    embedding = await _pipeline_embedding(settings, collection)
    return await asyncio.to_thread(
        partial(_evaluate, collection=collection, embedding=embedding, tenant=tenant, on_progress=on_progress),
        settings,
        judged,
    )


async def judge(settings: Settings, gate: QualityGate, serving: PipelineSpec, candidate: PipelineSpec) -> GateVerdict:
    """Both collections ranked on the gate's judged set; logged either way."""
    figures = []
    for spec in (serving, candidate):
        embedding = with_spec(settings, spec).embedding
        evaluate_spec = partial(_evaluate, collection=spec.collection, embedding=embedding, tenant="default")
        report = await asyncio.to_thread(evaluate_spec, settings, gate.judged)
        figures.append(report.ndcg_at_10)
    verdict = GateVerdict(
        gate.judged.name, serving.collection, candidate.collection, figures[0], figures[1], gate.max_drop
    )
    (log.info if verdict.passed else log.warning)("%s", verdict.render())
    return verdict


def _evaluate(
    settings: Settings,
    judged: JudgedSet,
    *,
    collection: str,
    embedding: EmbeddingSettings,
    tenant: str,
    on_progress: ProgressCallback | None = None,
) -> EvaluationReport:
    with CollectionRanker(settings, collection, embedding, tenant=tenant) as ranker:
        return evaluate(judged, ranker, collection, on_progress)


def _alias_target(settings: Settings) -> str:
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        target = store.alias_target()
    finally:
        store.close()
    if target is None:
        raise PermanentError(f"alias {settings.milvus.alias} points at no collection yet: nothing is indexed")
    return target


async def _pipeline_embedding(settings: Settings, collection: str) -> EmbeddingSettings:
    """The embedding settings of the pipeline writing `collection` (its model may differ from the environment's)."""
    if collection == settings.milvus.initial_collection:
        return settings.embedding
    try:
        spec = (await PipelineRegistry(settings).load()).get(collection)
    except RagbusError as exc:
        log.warning("pipeline registry unreadable (%s): ranking %s with RAGBUS_EMBED_MODEL's model", exc, collection)
        return settings.embedding
    return with_spec(settings, spec).embedding if spec else settings.embedding
