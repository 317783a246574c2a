"""Quality, freshness and query latency of one running system, measured side by side.

    python -m bench.run [--docs N] [--queries N] [--phases quality,freshness,latency] [--engine milvus-server]

Starts its own tansu (memory) and Milvus (milvus-lite, or the real 2.3 engine with --engine milvus-server), uses
Redis (the machine's, fresh namespace, or its own), runs the
three workers and the query API (`python -m ragbus api`) as processes, ingests SciFact through Kafka, then:
- quality: the test queries through POST /v1/query, nDCG@10 and recall@100 against the qrels;
- freshness: a changed document published, polled until the API returns it; idle, then during a bulk ingest;
- latency: uncached and cached requests at each concurrency level; p50/p95/p99 and requests/s.
Writes bench/results/run.json (or --out). `python -m bench.report` turns results into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path

import httpx

from bench import freshness, latency, quality
from bench.api_process import start_api
from bench.scifact import SciFact, load_scifact
from bench.stack import ENGINES, ROOT, bench_stack, cpu_reference, index, settle, start_workers
from ragbus.milvus.store import MilvusChunkStore
from ragbus.settings import Settings
from ragbus.stack.process import ManagedProcess, stop_all
from schemas.documents import DocumentEvent

PHASES = ("quality", "freshness", "latency")


def _fresh_questions(data: SciFact) -> list[str]:
    # Titles, then first sentences: questions the API has not been asked during the run.
    titles = [d.title for d in data.documents if d.title]
    firsts = [d.text.split(". ")[0][:300] for d in data.documents]
    return list(dict.fromkeys(q for q in titles + firsts if q.strip()))


async def _freshness(settings: Settings, url: str, data: SciFact, args: argparse.Namespace) -> dict[str, object]:
    idle = await freshness.measure(settings, url, data.documents, args.freshness_rounds)
    # The bulk load is new content (every chunk embedded again): the documents revised, not just republished.
    # At most half the corpus: the probes run on documents outside the bulk, so no probe races a bulk version.
    bulk_docs = min(args.bulk_docs, len(data.documents) // 2)
    revised = [
        DocumentEvent.model_validate(d.model_dump(exclude={"event_id", "version"}) | {"text": d.text + " (revised)"})
        for d in data.documents[:bulk_docs]
    ]
    bulk = asyncio.create_task(index(settings, revised))
    await asyncio.sleep(1.0)  # the bulk is published and being worked on
    busy = await freshness.measure_during(settings, url, data.documents[bulk_docs:], bulk)
    bulk_s = await bulk
    return {"idle": idle, "during_bulk": busy | {"bulk_documents": len(revised), "bulk_seconds": round(bulk_s, 2)}}


def _quality(settings: Settings, url: str, data: SciFact) -> dict[str, object]:
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        serving = store.alias_target()
        bm25 = bool(serving) and store.has_bm25(serving or "")
    finally:
        store.close()
    with httpx.Client(base_url=url) as client:
        return quality.evaluate(client, data) | {"collection_has_bm25": bm25}


def _save(result: dict[str, object], out: Path) -> None:
    # After every phase: a later phase that fails does not take the earlier measurements with it.
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def run(args: argparse.Namespace) -> dict[str, object]:
    """One measurement of the selected phases; returns the result record."""
    data = load_scifact(args.docs, args.queries)
    result: dict[str, object] = {"benchmark": "run", "engine": args.engine, "complete": False}
    with bench_stack(args.engine) as (env, settings, home):
        processes: list[ManagedProcess] = []
        try:
            result["cpu_reference_ms_at_start"] = cpu_reference()  # before the workers load their models
            processes += start_workers(env, home)
            ingest_s = asyncio.run(index(settings, data.documents))
            result["ingest"] = {
                "documents": len(data.documents),
                "seconds": round(ingest_s, 2),
                "docs_per_s": round(len(data.documents) / ingest_s, 2),
            }
            _save(result, args.out)
            api, url = start_api(env, home)
            processes.append(api)
            if "quality" in args.phases:
                result["quality"] = _quality(settings, url, data) | {"retrieval": "hybrid (dense where no BM25)"}
                _save(result, args.out)
                # The same index and queries with dense retrieval only: what BM25 adds, measured in one run.
                dense_api, dense_url = start_api({**env, "RAGBUS_API_RETRIEVAL": "dense"}, home)
                try:
                    result["quality_dense"] = _quality(settings, dense_url, data) | {"retrieval": "dense"}
                finally:
                    stop_all([dense_api], timeout_s=10)
                _save(result, args.out)
            if "freshness" in args.phases:
                result["freshness"] = asyncio.run(_freshness(settings, url, data, args))
                _save(result, args.out)
            if "latency" in args.phases:
                result["settled_before_latency"] = settle()
                reference = {"before": cpu_reference()}
                questions = _fresh_questions(data)
                result["latency"] = asyncio.run(
                    latency.measure(
                        url,
                        questions,
                        args.levels,
                        args.latency_requests,
                        repeated=args.hot_queries,
                        cached_requests=args.cached_requests,
                    )
                )
                result["cpu_reference_ms"] = reference | {"after": cpu_reference()}
        finally:
            stop_all(processes, timeout_s=10)
    return result | {
        "complete": True,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=None, help="documents to ingest (default: all 5,183)")
    parser.add_argument("--queries", type=int, default=None, help="judged test queries to ask (default: all 300)")
    parser.add_argument("--phases", type=lambda s: s.split(","), default=list(PHASES))
    parser.add_argument("--freshness-rounds", type=int, default=20)
    parser.add_argument("--bulk-docs", type=int, default=500)
    parser.add_argument("--latency-requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--cached-requests", type=int, default=1000, help="requests per cached concurrency level")
    parser.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--hot-queries", type=int, default=20, help="distinct questions of the cached runs")
    parser.add_argument("--engine", choices=ENGINES, default="milvus-lite")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/run.json (run-<engine>.json)")
    args = parser.parse_args()
    if args.out is None:
        suffix = "" if args.engine == "milvus-lite" else f"-{args.engine}"
        args.out = ROOT / "bench" / "results" / f"run{suffix}.json"
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}; choose from {', '.join(PHASES)}")
    result = run(args)
    _save(result, args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
