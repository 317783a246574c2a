"""One tenant's view of the pipeline (`GET /v1/status`): `collect_status` plus its own document and chunk counts.

Documents and dead letters are the caller's tenant's only; lag and the serving collection are the system's.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, Field

from ragbus.errors import RagbusError
from ragbus.milvus.document_states import MilvusDocumentStates
from ragbus.milvus.retrieval_mode import Mode
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings
from ragbus.status import PipelineStatus, collect_status
from schemas.documents import parse_document_key
from schemas.topics import STAGES


class StageLag(BaseModel):
    """Records a stage's consumer group has not committed yet."""

    total: int | None = Field(None, description="Sum over partitions; null when it could not be read.")
    partitions: dict[str, int] = Field(default_factory=dict, description="Lag per partition number.")
    error: str | None = Field(None, description="Why it could not be read (once, not per partition).")


class DeadLetterOut(BaseModel):
    """A pending dead letter of the caller's tenant."""

    stage: str
    doc_id: str | None = Field(None, examples=["docs/guide.md"])
    error_code: str = Field(examples=["document_too_large"])
    error: str = Field(description="Readable reason.")
    partition: int
    offset: int


class RetrievalOut(BaseModel):
    """The retrieval one Milvus deployment serves."""

    mode: Mode = Field(
        description="hybrid: BM25 + dense fused; dense-only: the dense vector alone; unknown: not readable now."
    )
    reason: str = Field(examples=["collection ragbus_chunks_v1 has the BM25 field"])


class StatusReport(BaseModel):
    """What the pipeline holds and owes, as one tenant sees it."""

    tenant: str
    generated_at: float = Field(description="Unix time of this snapshot.")
    documents: int | None = Field(None, description="The tenant's documents in the serving collection.")
    chunks: int | None = Field(None, description="The tenant's chunks in the serving collection.")
    index_error: str | None = Field(None, description="Why the counts could not be read.")
    alias: str = Field(description="The alias queries read.")
    serving_collection: str | None = Field(None, description="Where the alias points (null before the first).")
    retrieval: list[RetrievalOut] = Field(
        default_factory=list, description="Per Milvus deployment the API searches (RAGBUS_MILVUS_READ_URIS order)."
    )
    lag: dict[str, StageLag] = Field(description="Live lane, per stage: extractor, chunker, embedder, indexer.")
    bulk_lag: dict[str, StageLag] = Field(
        default_factory=dict, description="Bulk lane (large publishes, snapshots, replays), per stage."
    )
    dead_letters: list[DeadLetterOut] = Field(description="The tenant's pending dead letters, with reasons.")
    dead_letters_error: dict[str, str] = Field(default_factory=dict, description="Stages whose DLQ was unreadable.")
    pipelines: list[str] = Field(description="Live pipelines; a reindex line has its progress and ETA.")


def _stage_lag(read: dict[int, int] | str) -> StageLag:
    if isinstance(read, str):
        return StageLag(error=read)
    return StageLag(total=sum(read.values()), partitions={str(p): n for p, n in sorted(read.items())})


def _counts(settings: Settings, tenant: str, collection: str) -> tuple[int, int]:
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        return MilvusDocumentStates(store).count_live(collection, tenant), store.count_chunks(tenant)
    finally:
        store.close()


def _letters(status: PipelineStatus, tenant: str) -> list[DeadLetterOut]:
    out = []
    for stage, letters in status.pending_letters.items():
        for letter in letters:
            owner, doc_id = parse_document_key(letter.key) if letter.key else ("default", None)
            if owner == tenant:
                reason = letter.reason
                out.append(DeadLetterOut(stage=stage, doc_id=doc_id, error_code=reason.error_code, error=reason.error,
                                         partition=letter.partition, offset=letter.offset))  # fmt: skip
    return out


async def tenant_status(settings: Settings, tenant: str) -> StatusReport:
    """The snapshot `ragbus status` prints, narrowed to `tenant` where it shows documents."""
    status = await collect_status(settings)
    documents = chunks = None
    index_error = status.chunks if isinstance(status.chunks, str) else None
    if status.alias_target and not index_error:
        try:
            documents, chunks = await asyncio.to_thread(_counts, settings, tenant, status.alias_target)
        except RagbusError as exc:
            index_error = f"unavailable: {exc}"
    elif not index_error:
        documents = chunks = 0
    lag = {stage: _stage_lag(status.lag.get(stage, "unavailable")) for stage in STAGES}
    bulk_lag = {stage: _stage_lag(status.bulk_lag.get(stage, "unavailable")) for stage in STAGES}
    return StatusReport(
        tenant=tenant,
        generated_at=time.time(),
        documents=documents,
        chunks=chunks,
        index_error=index_error,
        alias=status.alias,
        serving_collection=status.alias_target,
        retrieval=[RetrievalOut(mode=m.mode, reason=m.reason) for m in status.retrieval],
        lag=lag,
        bulk_lag=bulk_lag,
        dead_letters=_letters(status, tenant),
        dead_letters_error={s: v for s, v in status.dead_letters.items() if isinstance(v, str)},
        pipelines=status.pipelines,
    )


def render_report(report: StatusReport) -> str:
    """Human-readable lines, as `ragbus status` prints them when it reads a running API."""
    lines = [f"tenant {report.tenant}: {_shown(report.documents)} documents, {_shown(report.chunks)} chunks"]
    if report.index_error:
        lines[0] = f"tenant {report.tenant}: index {report.index_error}"
    lines.append("")
    lines.append("stage     live lag (per partition)       bulk lag (per partition)")
    for stage, lag in report.lag.items():
        bulk = report.bulk_lag.get(stage)
        bulk_shown = (bulk.error or f"{bulk.total} {bulk.partitions}") if bulk else "-"
        lines.append(f"{stage:<9} {lag.error or f'{lag.total} {lag.partitions}':<30} {bulk_shown}")
    lines.append(f"index     alias {report.alias} -> {report.serving_collection or '(not created yet)'}")
    lines.extend(f"retrieval {r.mode} ({r.reason})" for r in report.retrieval)
    lines.append(f"dead letters ({len(report.dead_letters)} pending)")
    lines.extend(f"  {d.stage} {d.doc_id or f'{d.partition}:{d.offset}'}: {d.error_code}: {d.error}"
                 for d in report.dead_letters)  # fmt: skip
    lines.extend(f"  {stage}: {error}" for stage, error in report.dead_letters_error.items())
    if report.pipelines:
        lines.append("pipelines")
        lines.extend(f"  {line}" for line in report.pipelines)
    return "\n".join(lines)


def _shown(value: int | None) -> str:
    return "?" if value is None else str(value)
