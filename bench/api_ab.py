"""Uncached retrieval latency of two versions of the query API, side by side on one stack, alternating.

    python -m bench.api_ab --before /path/to/older/checkout [--after .] [--rounds 6] [--per-round 40]
    python -m bench.api_ab --before . --after-env RAGBUS_API_RETRIEVAL=dense   # one tree, two settings

Separates a change in the API's code from a change in the machine: both API processes (each from its own source
tree, each with its own Redis namespace so neither sees the other's cache) serve the same milvus-lite collection,
filled with every SciFact abstract as two chunks (random unit vectors, real text for BM25), and take turns
answering SciFact test questions one at a time (concurrency 1, retrieve_only, every question new to its API).
`--after-env NAME=VALUE` (repeatable) sets variables for the "after" API only, to compare settings the same way.
Writes bench/results/api-ab.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import httpx

from bench.api_process import start_api
from bench.scifact import load_scifact
from bench.scoring import summary_ms
from bench.stack import ROOT, bench_stack, save_result
from bench.stale_removal import fill
from ragbus.milvus.store import MilvusChunkStore
from ragbus.stack.process import ManagedProcess, stop_all


async def alternate(urls: dict[str, str], questions: list[str], rounds: int, per_round: int) -> dict[str, list[float]]:
    """Seconds per request of each API; each round gives both the same new questions, in turn."""
    took: dict[str, list[float]] = {name: [] for name in urls}
    async with httpx.AsyncClient(timeout=30) as client:
        for url in urls.values():  # first requests load what each process loads lazily
            for question in questions[-5:]:
                await client.post(f"{url}/v1/query", json={"query": question, "top_k": 5, "retrieve_only": True})
        for round_no in range(rounds):
            order = list(urls) if round_no % 2 == 0 else list(reversed(urls))
            for name in order:
                for question in questions[round_no * per_round : (round_no + 1) * per_round]:
                    began = time.perf_counter()
                    body = {"query": question, "top_k": 5, "retrieve_only": True}
                    response = await client.post(f"{urls[name]}/v1/query", json=body)
                    response.raise_for_status()
                    took[name].append(time.perf_counter() - began)
    return took


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree of the earlier version")
    parser.add_argument("--after", type=Path, default=ROOT, help="source tree of the later version (default: this)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=40, help="questions per API per round")
    parser.add_argument(
        "--after-env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the after API only"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api-ab.json")
    args = parser.parse_args()
    data = load_scifact(None, None)
    questions = list(data.queries.values())
    if args.rounds * args.per_round > len(questions) - 5:
        parser.error(f"at most {len(questions) - 5} questions: lower --rounds or --per-round")
    roots = {"before": args.before.resolve(), "after": args.after.resolve()}
    if bad := [item for item in args.after_env if "=" not in item]:
        parser.error(f"--after-env takes NAME=VALUE, not {bad[0]!r}")
    own_env = {"before": {}, "after": dict(item.split("=", 1) for item in args.after_env)}
    with bench_stack("milvus-lite") as (env, settings, home):
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        try:
            fill(store, settings.milvus.initial_collection, data.documents)
            store.client.create_alias(settings.milvus.initial_collection, settings.milvus.alias)
        finally:
            store.close()
        processes: list[ManagedProcess] = []
        urls = {}
        try:
            for name, root in roots.items():
                namespace = f"{env['RAGBUS_REDIS_NAMESPACE']}{name}"
                process, urls[name] = start_api(
                    {**env, "PYTHONPATH": str(root), "RAGBUS_REDIS_NAMESPACE": namespace, **own_env[name]}, home
                )
                processes.append(process)
            took = asyncio.run(alternate(urls, questions, args.rounds, args.per_round))
        finally:
            stop_all(processes, timeout_s=10)
    result = {
        "benchmark": "api_ab",
        "sources": {name: str(root) for name, root in roots.items()},
        "after_env": own_env["after"],
        "uncached_retrieve_only_c1": {name: summary_ms(s) | {"requests": len(s)} for name, s in took.items()},
    }
    save_result(result, args.out, "uncached_retrieve_only_c1")


if __name__ == "__main__":
    main()
