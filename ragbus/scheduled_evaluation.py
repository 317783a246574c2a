"""Retrieval quality on a schedule: the query API ranks a judged set every RAGBUS_EVAL_INTERVAL_S and exports
`ragbus_eval_ndcg_at_10{set}`, so an alert on quality has a signal even without user feedback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter, Gauge

from ragbus.background import stop_task
from ragbus.errors import ConfigError, InputError
from ragbus.evaluation import AsyncRanker, EvaluationReport, evaluate_async
from ragbus.judged_set import JudgedSet, load_judged_set
from ragbus.settings import EvalSettings

log = logging.getLogger(__name__)

NDCG_AT_10 = Gauge("ragbus_eval_ndcg_at_10", "Mean nDCG@10 of the last scheduled evaluation.", ["set"])
RECALL_AT_100 = Gauge("ragbus_eval_recall_at_100", "Mean recall@100 of the last scheduled evaluation.", ["set"])
LAST_RUN = Gauge("ragbus_eval_last_run_timestamp_seconds", "When the last scheduled evaluation ended.", ["set"])
FAILURES = Counter("ragbus_eval_failures_total", "Scheduled evaluations that failed (see the log).", ["set"])


class ScheduledEvaluation:
    """Ranks the judged set with `rank` now and every `interval_s`; a failed run is logged and counted."""

    def __init__(self, settings: EvalSettings, judged: JudgedSet, rank: AsyncRanker) -> None:
        self.settings, self.judged, self.rank = settings, judged, rank
        self.label = settings.set_name or judged.name
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> EvaluationReport:
        """One evaluation; its figures are exported."""
        # On the event loop, one query after another: the API's own retrieval, no thread to strand at shutdown.
        report = await evaluate_async(self.judged, self.rank, "serving")
        NDCG_AT_10.labels(self.label).set(report.ndcg_at_10)
        RECALL_AT_100.labels(self.label).set(report.mean("recall_at_100"))
        LAST_RUN.labels(self.label).set(time.time())
        log.info("scheduled evaluation on %s: %s", self.label, report.summary())
        return report

    def start(self) -> None:
        """Run in the background until stop()."""
        self._task = asyncio.create_task(self._every_interval(), name="scheduled-evaluation")

    async def stop(self) -> None:
        """Cancel the schedule (an evaluation in progress is abandoned)."""
        if self._task is not None:
            await stop_task(self._task)

    async def _every_interval(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a failed run must not end the schedule; the counter makes it visible
                FAILURES.labels(self.label).inc()
                log.exception("scheduled evaluation on %s failed", self.label)
            await asyncio.sleep(self.settings.interval_s)


@asynccontextmanager
async def scheduled_evaluation(settings: EvalSettings, rank: AsyncRanker) -> AsyncIterator[ScheduledEvaluation | None]:
    """The schedule while the block runs, or None when RAGBUS_EVAL_JUDGED_DIR is unset."""
    if settings.judged_dir is None:
        yield None
        return
    try:
        judged = load_judged_set(settings.judged_dir, limit=settings.limit)
    except InputError as exc:
        raise ConfigError(f"RAGBUS_EVAL_JUDGED_DIR: {exc}") from None
    job = ScheduledEvaluation(settings, judged, rank)
    job.start()
    try:
        yield job
    finally:
        await job.stop()
