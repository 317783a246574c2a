"""How far a pipeline has got: documents replayed of the log's total, and the lag of each of its stages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ragbus.kafka_clients import group_offsets
from ragbus.pipelines import PipelineContext
from schemas.topics import STAGES


@dataclass(frozen=True)
class PipelineProgress:
    """One measurement of a pipeline."""

    collection: str
    total: int  # records in the documents topic now
    replayed: int  # of them, committed by the pipeline's chunker
    lag: dict[str, int]  # uncommitted records on each stage's input topic
    at: float = field(default_factory=time.monotonic)

    @property
    def caught_up(self) -> bool:
        """Every stage has committed everything on its input (the collection holds the whole log)."""
        return self.replayed >= self.total and all(v == 0 for v in self.lag.values())

    def render(self, eta_s: float | None = None) -> str:
        """One line for a terminal."""
        lags = " ".join(f"{stage}={self.lag[stage]}" for stage in STAGES)
        eta = f", ETA {eta_s:.0f}s" if eta_s is not None else ""
        return f"{self.collection}: replayed {self.replayed}/{self.total} document events, lag {lags}{eta}"


async def measure(pipeline: PipelineContext) -> PipelineProgress:
    """Read the committed and end offsets of the pipeline's three consumer groups."""
    settings, names = pipeline.settings, pipeline.names
    lag: dict[str, int] = {}
    total = replayed = 0
    for stage in STAGES:
        lag[stage] = 0
        for topic in names.input_topics(stage):  # both lanes
            offsets = await group_offsets(settings, names.group(stage), topic)
            lag[stage] += sum(max(0, end - committed) for committed, end in offsets.values())
            if stage == STAGES[0]:  # the stage that reads the documents topics
                total += sum(end for _, end in offsets.values())
                replayed += sum(min(committed, end) for committed, end in offsets.values())
    return PipelineProgress(pipeline.collection, total, replayed, lag)


def eta_seconds(first: PipelineProgress, now: PipelineProgress) -> float | None:
    """Seconds until the replay reaches the end of the log at the rate seen since `first`."""
    done = now.replayed - first.replayed
    elapsed = now.at - first.at
    if done <= 0 or elapsed <= 0:
        return None
    return max(0.0, (now.total - now.replayed) / (done / elapsed))
