"""Live and bulk lanes: freshness of live edits during a bulk ingest, and what the lanes cost the bulk.

    python -m bench.lanes [--bulk-docs 5000] [--probe-docs 300] [--every-s 2] [--order no-lanes,lanes]

Starts its own tansu, Milvus (milvus-lite by default) and workers and the query API, indexes `--probe-docs` SciFact
documents, then runs the same bulk twice, each time with live probes (bench/freshness.py `measure_during`: a probed
document is replaced and the API polled until it returns the new text):
- `no-lanes`: the bulk published in the live lane, as every publish was before lanes: probes queue behind it;
- `lanes`: the bulk in the bulk lane, probes live: each stage serves them first.
Each run's bulk is new content (its own ids, titles and texts, so the embedding cache gives neither an advantage).
Reports each run's probe p50/p95 and bulk documents/s, and `throughput_ratio` = lanes / no-lanes (goal >= 0.95),
with the lanes run's probe p95 against the goal of 1 s. Writes bench/results/lanes.json (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import orjson
from pydantic import ValidationError

from bench import freshness
from bench.api_process import start_api
from bench.scifact import DATASET
from bench.stack import ENGINES, ROOT, bench_stack, index, save_result, settle, start_workers
from ragbus.settings import Settings
from ragbus.stack.process import ManagedProcess, stop_all
from schemas.documents import DocumentEvent
from schemas.topics import Lane

MODES = {"no-lanes": Lane.LIVE, "lanes": Lane.BULK}
P95_GOAL_S = 1.0
RATIO_GOAL = 0.95


def corpus_of(count: int, dataset: Path = DATASET) -> list[DocumentEvent]:
    """The first `count` SciFact abstracts that are valid documents (a few hold control characters the publisher
    refuses: they are skipped here, where no qrels refer to them)."""
    events: list[DocumentEvent] = []
    with (dataset / "corpus.jsonl").open("rb") as lines:
        for line in lines:
            row = orjson.loads(line)
            try:
                events.append(DocumentEvent(doc_id=row["_id"], title=row.get("title") or None, text=row["text"]))
            except ValidationError:
                continue
            if len(events) == count:
                break
    return events


def bulk_of(corpus: list[DocumentEvent], count: int, mode: str) -> list[DocumentEvent]:
    """`count` new documents cycling over `corpus`, unique to `mode` in id, title and text (no cache hits)."""
    return [
        DocumentEvent(
            doc_id=f"bulk-{mode}/{i:05d}",
            title=f"{corpus[i % len(corpus)].title} ({mode} {i})",
            text=f"({mode} copy {i}) {corpus[i % len(corpus)].text}",
        )
        for i in range(count)
    ]


async def one_run(
    settings: Settings, url: str, probes: list[DocumentEvent], bulk: list[DocumentEvent], lane: Lane, every_s: float
) -> dict[str, object]:
    """The bulk in `lane` with live probes on `probes` meanwhile; freshness and the bulk's documents/s."""
    started = time.perf_counter()
    task = asyncio.create_task(index(settings, bulk, lane=lane))
    await asyncio.sleep(1.0)  # the bulk is published and being worked on
    probed = await freshness.measure_during(settings, url, probes, task, every_s=every_s)
    await task
    seconds = time.perf_counter() - started
    return probed | {
        "bulk_lane": lane.value,
        "bulk_documents": len(bulk),
        "bulk_seconds": round(seconds, 2),
        "bulk_docs_per_s": round(len(bulk) / seconds, 2),
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    """Both runs on one stack; the result record."""
    documents = corpus_of(args.probe_docs + args.bulk_docs)
    probes, corpus = documents[: args.probe_docs], documents[args.probe_docs :] or documents
    result: dict[str, object] = {"benchmark": "lanes", "engine": args.engine, "order": args.order}
    with bench_stack(args.engine) as (env, settings, home):
        processes: list[ManagedProcess] = []
        try:
            processes += start_workers(env, home)
            asyncio.run(index(settings, probes))
            api, url = start_api(env, home)
            processes.append(api)
            runs: dict[str, object] = {}
            for mode in args.order:
                settle(max_wait_s=args.settle_s)  # the previous run's engine work is not charged to this one
                bulk = bulk_of(corpus, args.bulk_docs, mode)
                runs[mode] = asyncio.run(one_run(settings, url, probes, bulk, MODES[mode], args.every_s))
                print(mode, runs[mode])
            result["runs"] = runs
        finally:
            stop_all(processes, timeout_s=10)
    lanes, plain = runs.get("lanes"), runs.get("no-lanes")
    if isinstance(lanes, dict) and isinstance(plain, dict):
        ratio = lanes["bulk_docs_per_s"] / plain["bulk_docs_per_s"]
        p95 = lanes.get("p95_s")
        result["summary"] = {
            "throughput_ratio": round(ratio, 3),
            "throughput_goal_met": ratio >= RATIO_GOAL,
            "live_p95_s": p95,
            "live_p95_goal_met": isinstance(p95, int | float) and p95 < P95_GOAL_S,
            "no_lanes_p95_s": plain.get("p95_s"),
        }
    return result


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bulk-docs", type=int, default=5000, help="documents of each bulk (the goal: >= 5,000)")
    parser.add_argument("--probe-docs", type=int, default=300, help="documents the probes replace, one each")
    parser.add_argument("--every-s", type=float, default=2.0, help="seconds between live probes")
    parser.add_argument("--order", type=lambda s: s.split(","), default=list(MODES), help="runs, in this order")
    parser.add_argument("--settle-s", type=float, default=120, help="most seconds to wait for a quiet machine")
    parser.add_argument("--engine", choices=ENGINES, default="milvus-lite")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lanes.json")
    args = parser.parse_args()
    if unknown := set(args.order) - set(MODES):
        parser.error(f"unknown runs {sorted(unknown)}; choose from {', '.join(MODES)}")
    result = run(args)
    save_result(result, args.out, "summary" if "summary" in result else "runs")


if __name__ == "__main__":
    main()
