"""Extractive answers vs the embedded stack's local generative models (llama-cpp-python), side by side.

    python -m bench.answers_llm [--limit N] [--models gemma3-270m,smollm2-135m]

One stack (tansu, milvus-lite, Redis, the workers) holds the README and docs/ as `ragbus up --demo` publishes them.
One query API process serves it with no LLM (extractive answers) and one per local model, whose provider chain
points at the llama-cpp-python server the stack starts for RAGBUS_STACK_LLM=<model> (same code, same verified GGUF,
same LLM settings as `ragbus up`). All have the answer cache off. Each judged question of
tests/data/docs_questions.json is streamed from each in turn (the order rotates), then each unanswerable one;
per answer: time to the first answer delta, time to the `done` event, the judged facts it holds, the share of its
sentences supported by the passages it cites (bench/answer_support.py), whether it repeats the prompt instead of
answering, whether it abstains, and whether the API fell back (degraded). The machine's load average is recorded
before and after. Writes bench/results/answers-llm.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bench.answer_support import abstains, answer_support, facts_held
from bench.api_process import start_api
from bench.stack import ROOT, bench_stack, cpu_reference, index, save_result, start_workers
from producers.sources.files import read_documents
from query_api.generation import SYSTEM_PROMPT
from ragbus import local_llm
from ragbus.settings import StackSettings
from ragbus.stack.launcher import LOCAL_LLM_DEFAULTS
from ragbus.stack.process import ManagedProcess, free_port, stop_all
from ragbus.stack.servers import start_llama_server

QUESTIONS = json.loads((ROOT / "tests" / "data" / "docs_questions.json").read_text())
TOP_K = 5


async def ask(client: httpx.AsyncClient, url: str, question: str) -> dict[str, Any]:
    """Stream one answer: its text, citations, first-delta and total seconds, and the done event's flags."""
    started = time.perf_counter()
    first: float | None = None
    text, citations, done, event = "", [], {}, ""
    body = {"query": question, "top_k": TOP_K, "stream": True}
    async with client.stream("POST", f"{url}/v1/query", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "citations":
                    citations = data["citations"]
                elif event == "delta":
                    first = first or time.perf_counter() - started
                    text += data["text"]
                elif event == "reset":
                    text = ""
                elif event == "done":
                    done = data
    total = time.perf_counter() - started
    return {"answer": text, "citations": citations, "first_s": first, "total_s": total, **done}


def echoes_prompt(answer: str) -> bool:
    """The answer repeats the system prompt or the sources as the prompt quotes them."""
    return SYSTEM_PROMPT[:60] in answer or '{"source":' in answer


def judge(reply: dict[str, Any], facts: list[list[str]] | None) -> dict[str, Any]:
    """The reply's figures: support by its cited passages, facts held (judged questions) and abstention."""
    passages = [(str(c["doc_id"]), str(c["title"]) + " " + str(c["text"])) for c in reply["citations"]]
    judged = {
        "question": reply["question"],
        "answer": reply["answer"],
        "first_s": round(reply["first_s"] or reply["total_s"], 3),
        "total_s": round(reply["total_s"], 3),
        "degraded": reply.get("degraded"),
        # An answer that repeats the prompt (the instructions, the sources' JSON) is not an answer: its "do not
        # know" is the instruction's, and its facts are the sources'.
        "echoes_prompt": (echoes := echoes_prompt(reply["answer"])),
        "abstains": abstains(reply["answer"]) and not echoes,
        **answer_support(reply["answer"], passages),
    }
    if facts is not None:
        judged |= {"facts": len(facts), "facts_held": facts_held(reply["answer"], facts)}
    return judged


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the times; facts held; support; abstentions (on the unanswerable questions)."""
    judged = [r for r in rows if "facts" in r]
    unanswerable = [r for r in rows if "facts" not in r]
    firsts, totals = [r["first_s"] for r in judged], [r["total_s"] for r in judged]
    return {
        "questions": len(judged),
        "first_delta_s_p50": round(statistics.median(firsts), 3),
        "first_delta_s_max": round(max(firsts), 3),
        "total_s_p50": round(statistics.median(totals), 3),
        "total_s_max": round(max(totals), 3),
        "facts_held": f"{sum(r['facts_held'] for r in judged)}/{sum(r['facts'] for r in judged)}",
        "answers_with_every_fact": sum(r["facts_held"] == r["facts"] for r in judged),
        "sentence_support": round(sum(r["supported"] for r in judged) / max(1, sum(r["sentences"] for r in judged)), 3),
        "fully_supported_answers": sum(r["sentences"] > 0 and r["supported"] == r["sentences"] for r in judged),
        "echoed_the_prompt": sum(r["echoes_prompt"] for r in rows),
        "abstained_on_answerable": sum(r["abstains"] for r in judged),
        "abstained_on_unanswerable": f"{sum(r['abstains'] for r in unanswerable)}/{len(unanswerable)}",
        "degraded": sum(bool(r["degraded"]) for r in rows),
    }


async def compare(urls: dict[str, str], limit: int | None) -> dict[str, list[dict[str, Any]]]:
    """Every question to each API in turn (the order rotates), judged."""
    items = QUESTIONS["questions"][:limit]
    asked = [(q["question"], q["facts"]) for q in items] + [(q, None) for q in QUESTIONS["unanswerable"]]
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    async with httpx.AsyncClient(timeout=120) as client:
        for url in urls.values():  # first requests load what each process loads lazily
            await ask(client, url, "What is ragbus?")
        for n, (question, facts) in enumerate(asked):
            names = list(urls)
            for name in names[n % len(names) :] + names[: n % len(names)]:  # rotated: none always first
                reply = await ask(client, urls[name], question)
                rows[name].append(judge({**reply, "question": question}, facts))
                print(f"{name:10} {rows[name][-1]['total_s']:6.2f}s {question}", flush=True)
    return rows


def start_model(
    home: Path, env: dict[str, str], model: local_llm.GGUFModel, stack: StackSettings
) -> tuple[list[ManagedProcess], str, float]:
    """The model's llama-cpp-python server as `ragbus up` starts it, and a query API answering through it; returns
    both processes, the API's URL and the seconds the GGUF took to reassemble (or copy) and verify."""
    started = time.perf_counter()
    path = local_llm.verified_model(home, model)
    verify_s = time.perf_counter() - started
    port = free_port()
    chat_format = local_llm.write_chat_format(home, model)
    server = start_llama_server(home, port, path, model.name, chat_format=chat_format,
                                context_tokens=stack.llm_context_tokens, threads=stack.llm_threads)  # fmt: skip
    llm_env = {"RAGBUS_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1", "RAGBUS_LLM_MODEL": model.name}
    llm_env |= {f"RAGBUS_LLM_{k.upper()}": str(v) for k, v in LOCAL_LLM_DEFAULTS.items()}
    try:
        api, url = start_api({**env, **llm_env}, home)
    except BaseException:
        stop_all([server], timeout_s=20)
        raise
    return [server, api], url, verify_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="only the first N judged questions")
    parser.add_argument(
        "--models", type=lambda s: s.split(","), default=list(local_llm.MODELS),
        help=f"local models to ask beside the extractive answers (default: {','.join(local_llm.MODELS)})",
    )  # fmt: skip
    args = parser.parse_args()
    unknown = set(args.models) - set(local_llm.MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose from {', '.join(local_llm.MODELS)}")
    stack = StackSettings()
    with bench_stack() as (stack_env, settings, home):
        env = {**stack_env, "RAGBUS_REDIS_QUERY_CACHE_TTL_S": "0"}
        processes: list[ManagedProcess] = []
        verify_s: dict[str, float] = {}
        try:
            processes += start_workers(env, home)
            asyncio.run(index(settings, read_documents([ROOT / "README.md", ROOT / "docs"])))
            extractive, extractive_url = start_api(env, home)
            processes.append(extractive)
            urls = {"extractive": extractive_url}
            for name in args.models:
                started, urls[name], verify_s[name] = start_model(home, env, local_llm.MODELS[name], stack)
                processes += started
            load_before, reference_before = os.getloadavg(), cpu_reference()
            rows = asyncio.run(compare(urls, args.limit))
            load_after, reference_after = os.getloadavg(), cpu_reference()
        finally:
            stop_all(processes, timeout_s=20)
    result = {
        "summary": {name: summary(r) for name, r in rows.items()},
        "settings": {
            "top_k": TOP_K,
            "llm_context_tokens": stack.llm_context_tokens,
            "llm_threads": stack.llm_threads or os.cpu_count(),
            **LOCAL_LLM_DEFAULTS,
        },
        "gguf_copy_and_verify_s": {name: round(seconds, 2) for name, seconds in verify_s.items()},
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "cpu_reference_ms": {"before": reference_before, "after": reference_after},
        "answers": rows,
    }
    save_result(result, ROOT / "bench" / "results" / "answers-llm.json", "summary")


if __name__ == "__main__":
    main()
