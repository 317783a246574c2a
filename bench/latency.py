"""Query latency and throughput through REST, cached and uncached: retrieval only, and extractive answers.

Uncached requests each ask a question never asked before (SciFact titles), so every one embeds the query and
searches; cached requests repeat a few questions answered just before, so they are served from Redis.
Retrieval only (`"retrieve_only": true`) returns the ranked passages; an extractive answer (no LLM is configured)
also embeds every sentence of the best passages to pick the ones closest to the question.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

import httpx

from bench.scoring import summary_ms

TOP_K = 5


MODES = {"retrieve_only": {"retrieve_only": True}, "extractive_answer": {}}


async def _worker(
    client: httpx.AsyncClient,
    queue: asyncio.Queue[str],
    extra: Mapping[str, object],
    took: list[float],
    cached: list[bool],
    errors: list[int],
) -> None:
    while not queue.empty():
        query = queue.get_nowait()
        started = time.perf_counter()
        response = await client.post("/v1/query", json={"query": query, "top_k": TOP_K, **extra})
        if response.status_code != 200:
            # A refusal (503 search_unavailable when Milvus is too slow) is a result to report, not a crash.
            errors.append(response.status_code)
            continue
        took.append(time.perf_counter() - started)
        cached.append(bool(response.json()["cached"]))


async def load(
    api_url: str, queries: Sequence[str], concurrency: int, extra: Mapping[str, object] | None = None
) -> dict[str, object]:
    """Send `queries` (with `extra` request fields) `concurrency` at a time; latency percentiles and requests/s."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for query in queries:
        queue.put_nowait(query)
    took: list[float] = []
    cached: list[bool] = []
    errors: list[int] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=api_url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(_worker(client, queue, extra or {}, took, cached, errors) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    result: dict[str, object] = {
        "concurrency": concurrency,
        "requests": len(took),
        "errors": {str(code): errors.count(code) for code in sorted(set(errors))},
        "requests_per_s": round(len(took) / wall, 1),
    }
    if took:
        result |= {"cached_share": round(sum(cached) / len(cached), 3), **summary_ms(took)}
    return result


async def measure(
    api_url: str, fresh_queries: Sequence[str], levels: Sequence[int], requests: int, repeated: int = 20
) -> dict[str, dict[str, list[dict[str, object]]]]:
    """For each mode, uncached then cached runs at each concurrency level.

    fresh_queries must hold len(MODES) x (levels x requests + repeated) questions: none is asked twice uncached.
    """
    pool = iter(fresh_queries)
    results: dict[str, dict[str, list[dict[str, object]]]] = {}
    for mode, extra in MODES.items():
        uncached, cached = [], []
        for level in levels:
            uncached.append(await load(api_url, [next(pool) for _ in range(requests)], level, extra))
        hot = [next(pool) for _ in range(repeated)]
        await load(api_url, hot, 1, extra)  # answered once: from now on in the cache
        for level in levels:
            cached.append(await load(api_url, [hot[i % repeated] for i in range(requests)], level, extra))
        results[mode] = {"uncached": uncached, "cached": cached}
    return results
