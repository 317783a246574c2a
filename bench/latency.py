"""Query latency and throughput through REST, cached and uncached: retrieval only, and extractive answers.

Uncached requests each ask a question never asked before (SciFact titles), so every one embeds the query and
searches; cached requests repeat a few questions answered just before, so they are served from Redis.
Retrieval only (`"retrieve_only": true`) returns the ranked passages; an extractive answer (no LLM is configured)
also embeds every sentence of the best passages to pick the ones closest to the question.

The load generator shares the machine's cores with the API, so it is kept light: aiohttp with one keep-alive
connection per concurrent caller. httpx used about as much CPU per request as a cached answer costs the API
(2.2 against 2.0 ms here), and that CPU went into the measured latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

import aiohttp
import orjson

from bench.scoring import summary_ms

TOP_K = 5
_JSON = {"Content-Type": "application/json"}


MODES = {"retrieve_only": {"retrieve_only": True}, "extractive_answer": {}}


async def _worker(
    session: aiohttp.ClientSession,
    queue: asyncio.Queue[str],
    extra: Mapping[str, object],
    took: list[float],
    cached: list[bool],
    errors: list[int],
) -> None:
    while not queue.empty():
        query = queue.get_nowait()
        body = orjson.dumps({"query": query, "top_k": TOP_K, **extra})
        started = time.perf_counter()
        async with session.post("/v1/query", data=body, headers=_JSON) as response:
            payload = await response.read()
        if response.status != 200:
            # A refusal (503 search_unavailable when Milvus is too slow) is a result to report, not a crash.
            errors.append(response.status)
            continue
        took.append(time.perf_counter() - started)
        cached.append(bool(orjson.loads(payload)["cached"]))


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
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(api_url, connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(_worker(session, queue, extra or {}, took, cached, errors) for _ in range(concurrency)))
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
    api_url: str,
    fresh_queries: Sequence[str],
    levels: Sequence[int],
    requests: int,
    repeated: int = 20,
    cached_requests: int | None = None,
) -> dict[str, dict[str, list[dict[str, object]]]]:
    """For each mode, uncached then cached runs at each concurrency level.

    fresh_queries must hold len(MODES) x (levels x requests + repeated) questions: none is asked twice uncached.
    cached_requests (default: `requests`) per cached level: cheap, so enough of them that p99 is not the one or two
    slowest requests.
    """
    cached_requests = cached_requests or requests
    pool = iter(fresh_queries)
    results: dict[str, dict[str, list[dict[str, object]]]] = {}
    for mode, extra in MODES.items():
        uncached, cached = [], []
        for level in levels:
            uncached.append(await load(api_url, [next(pool) for _ in range(requests)], level, extra))
        hot = [next(pool) for _ in range(repeated)]
        await load(api_url, hot, 1, extra)  # answered once: from now on in the cache
        for level in levels:
            hot_load = [hot[i % repeated] for i in range(cached_requests)]
            cached.append(await load(api_url, hot_load, level, extra))
        results[mode] = {"uncached": uncached, "cached": cached}
    return results
