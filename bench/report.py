"""Turn bench/results/*.json into the tables and PNG plots of docs/benchmarks.md.

    python -m bench.report

Only the part between the `bench:results` markers of docs/benchmarks.md is rewritten; the prose around it
(how to read the numbers, why they differ from the reference) stays as written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.stack import ROOT

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
IMAGES = ROOT / "docs" / "img"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
REFERENCE_NDCG, REFERENCE_RECALL = 0.6451, 0.925


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _ragbus_rows(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, quality) of each retrieval the run measured through the API."""
    rows = []
    q = run["quality"]
    mode = "hybrid BM25 + dense, RRF k=60" if q.get("collection_has_bm25") else "dense"
    rows.append((f"ragbus through Kafka + REST, {mode}", q))
    if "quality_dense" in run and q.get("collection_has_bm25"):  # without BM25 both asked the same dense search
        rows.append(("ragbus through Kafka + REST, dense only", run["quality_dense"]))
    return rows


def _quality(runs: list[dict[str, Any]], onnx: dict[str, Any] | None, hybrid: dict[str, Any] | None) -> list[str]:
    rows = [
        "| system | queries | documents | nDCG@10 | recall@100 |",
        "|---|---|---|---|---|",
        f"| reference: whole document, exact cosine (dataset README) | 300 | 5183 | {REFERENCE_NDCG} | "
        f"{REFERENCE_RECALL} |",
    ]
    for run in runs:
        for label, q in _ragbus_rows(run):
            rows.append(
                f"| **{label}** (chunks of 200 tokens, 24-token title prefix, {run['engine']}) | "
                f"{q['queries']} | {q['documents']} | **{q['ndcg_at_10']}** | **{q['recall_at_100']}** |"
            )
    if onnx:
        exact = onnx["whole_document_exact_search"]
        for name, label in (("torch", "torch (reproduces the reference)"), ("onnx-int8", "ONNX Runtime int8")):
            r = exact[name]
            rows.append(
                f"| whole document, exact cosine, {label} | {onnx['queries']} | {onnx['documents']} | "
                f"{r['ndcg_at_10']} | {r['recall_at_100']} |"
            )
    if hybrid and hybrid.get("supported"):
        named = (("dense", "dense alone, FLAT on milvus-lite"), ("bm25", "BM25 alone (Milvus full-text)"))
        for name, label in (*named, ("rrf", "hybrid BM25 + dense, RRF k=60")):
            r = hybrid["results"][name]
            rows.append(
                f"| whole document, {label} | {hybrid['queries']} | {hybrid['documents']} | {r['ndcg_at_10']} | "
                f"{r['recall_at_100']} |"
            )
    return rows


def _onnx_speed(onnx: dict[str, Any]) -> list[str]:
    rows = ["| backend | docs/s (two passes, alternating) | corpus encode s |", "|---|---|---|"]
    for name in ("torch", "onnx-int8"):
        passes = ", ".join(str(v) for v in onnx["docs_per_s"][name])
        rows.append(f"| {name} | {passes} | {onnx['whole_document_exact_search'][name]['corpus_encode_seconds']} |")
    rows.append(f"| **speed-up** | **{onnx['speedup_onnx_over_torch']}x** | |")
    return rows


def _freshness(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    rows = [
        "| engine | documents | condition | probes | missed | p50 s | p95 s | max s | recording |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for source, run in runs:
        f = run["freshness"]
        bulk = f["during_bulk"]
        scheduled = f", a probe every {bulk['published_every_s']} s" if "published_every_s" in bulk else ""
        for name, label in (
            ("idle", "idle"),
            ("during_bulk", f"during a bulk ingest of {bulk['bulk_documents']} docs{scheduled}"),
        ):
            r = f[name]
            rows.append(
                f"| {run['engine']} | {run['ingest']['documents']} | {label} | {r['probes']} | {r['missed']} | "
                f"{r.get('p50_s', '-')} | {r.get('p95_s', '-')} | {r.get('max_s', '-')} | `{source}` |"
            )
    return rows


def _latency_modes(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Latency runs by request mode (recordings before `retrieve_only` existed measured extractive answers)."""
    latency = run["latency"]
    return {"extractive_answer": latency} if "uncached" in latency else latency


MODE_LABELS = {"retrieve_only": "retrieval only", "extractive_answer": "extractive answer"}


def _latency(runs: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| engine | documents | request | cache | concurrency | requests | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for mode, latency in _latency_modes(run).items():
            for cache in ("uncached", "cached"):
                for r in latency[cache]:
                    rows.append(
                        f"| {run['engine']} | {run['ingest']['documents']} | {MODE_LABELS[mode]} | {cache} | "
                        f"{r['concurrency']} | {r['requests']} (errors: {r.get('errors') or 0}) | "
                        f"{r['requests_per_s']} | {r.get('p50_ms', '-')} | {r.get('p95_ms', '-')} | "
                        f"{r.get('p99_ms', '-')} |"
                    )
    return rows


def _cpu_references(runs: list[dict[str, Any]]) -> list[str]:
    """How fast the shared machine was around each latency phase (bench.stack.cpu_reference; lower is faster)."""
    said = [
        f"{run['engine']}: {ref['before']} ms before, {ref['after']} ms after"
        for run in runs
        if (ref := run.get("cpu_reference_ms"))
    ]
    if not said:
        return []
    return [
        "The same fixed single-threaded Python loop, timed around each latency phase, shows how fast the shared "
        f"machine was then (lower is faster): {'; '.join(said)}.",
        "",
    ]


def _ingest(recordings: list[tuple[str, dict[str, Any]]]) -> list[str]:
    rows = [
        "| embedders x model threads | documents | chunks | pipeline s | pipeline docs/s | pipeline chunks/s "
        "| raw encode chunks/s | raw encode run | ratio | recording |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ingest in recordings:
        shape = f"{ingest.get('embedder_processes', 1)} x {ingest.get('embedder_threads', 'all cores')}"
        # Recordings before 27 Nov evening timed the model once, after the pipeline, in one process on every core.
        bracket = ingest.get("raw_encode_seconds_before_and_after")
        raw_run = f"same layout, before and after: {bracket[0]} / {bracket[1]} s" if bracket else "1 process, after"
        rows.append(
            f"| {shape} | {ingest['documents']} | {ingest['chunks']} | {ingest['pipeline_seconds']} | "
            f"{ingest['pipeline_docs_per_s']} | {ingest['pipeline_chunks_per_s']} | {ingest['raw_chunks_per_s']} | "
            f"{raw_run} | **{ingest['ratio_pipeline_over_raw']}** | `{name}` |"
        )
    return rows


def _gc_pause(gc: dict[str, Any]) -> list[str]:
    before, after = gc["full_collection_ms_before"], gc["full_collection_ms_after"]
    return [
        f"A process with the API imported and the model loaded tracks {gc['tracked_objects']:,} objects. A full "
        f"collection there took {before[0]} to {before[-1]} ms (5 runs); after `freeze_startup_objects()` "
        f"({gc['frozen_objects']:,} objects frozen) it took {after[0]} to {after[-1]} ms. The API and the embedder "
        f"freeze at the end of start-up (`python -m bench.gc_pause`, {gc['when']}).",
    ]


def _plot_latency(run: dict[str, Any], path: Path) -> None:
    modes = _latency_modes(run)
    mode = "retrieve_only" if "retrieve_only" in modes else "extractive_answer"
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, cache in zip(axes, ("uncached", "cached"), strict=True):
        runs = modes[mode][cache]
        levels = [str(r["concurrency"]) for r in runs]
        for offset, key in enumerate(("p50_ms", "p95_ms", "p99_ms")):
            xs = [i + (offset - 1) * 0.27 for i in range(len(runs))]
            ax.bar(xs, [r.get(key, 0) for r in runs], width=0.27, label=key.removesuffix("_ms"))
        ax.set_xticks(range(len(runs)), levels)
        ax.set_xlabel("concurrent requests")
        ax.set_ylabel("ms")
        ax.set_title(f"{cache} (req/s: {', '.join(str(r['requests_per_s']) for r in runs)})", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle(f"POST /v1/query latency, {run['engine']}, {MODE_LABELS[mode]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_freshness(run: dict[str, Any], path: Path) -> None:
    f = run["freshness"]
    names = ["idle", "during_bulk"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for offset, key in enumerate(("p50_s", "p95_s")):
        ax.bar(
            [i + (offset - 0.5) * 0.35 for i in range(2)], [f[n].get(key, 0) for n in names], width=0.35, label=key[:3]
        )
    ax.set_xticks(range(2), ["idle", "during bulk ingest"])
    ax.set_ylabel("seconds, publish -> returned by a query")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_quality(run: dict[str, Any], onnx: dict[str, Any] | None, hybrid: dict[str, Any] | None, path: Path) -> None:
    bars = [("reference\n(whole doc, exact)", REFERENCE_NDCG, REFERENCE_RECALL)]
    for label, q in _ragbus_rows(run):
        short = "ragbus\n" + ("hybrid" if "hybrid" in label else "dense")
        bars.append((short, q["ndcg_at_10"], q["recall_at_100"]))
    if onnx:
        r = onnx["whole_document_exact_search"]["onnx-int8"]
        bars.append(("whole doc,\nONNX int8", r["ndcg_at_10"], r["recall_at_100"]))
    if hybrid and hybrid.get("supported"):
        for name, label in (("bm25", "whole doc,\nBM25"), ("rrf", "whole doc,\nBM25+dense RRF")):
            r = hybrid["results"][name]
            bars.append((label, r["ndcg_at_10"], r["recall_at_100"]))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    xs = list(range(len(bars)))
    ax.bar([x - 0.18 for x in xs], [b[1] for b in bars], width=0.36, label="nDCG@10")
    ax.bar([x + 0.18 for x in xs], [b[2] for b in bars], width=0.36, label="recall@100")
    ax.set_xticks(xs, [b[0] for b in bars], fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    ax.set_title("SciFact test (300 queries), all-MiniLM-L6-v2")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render() -> str:
    """The generated block (tables + image links); writes the PNGs."""
    run = _load("run.json")
    if run is None:
        raise SystemExit("no bench/results/run.json: run `python -m bench.run` first")
    onnx, hybrid = _load("onnx.json"), _load("hybrid.json")
    IMAGES.mkdir(parents=True, exist_ok=True)
    real = _load("run-milvus-server.json")
    recorded = [f"{r['engine']} {r['when']} (`bench/results/run{'' if r is run else '-milvus-server'}.json`)"
                for r in (run, real) if r]  # fmt: skip
    for r in (run, real):
        for part in ("latency", "freshness"):
            if r and f"{part}_run" in r:
                recorded.append(f"{r['engine']} {part} rerun {r[f'{part}_run']['when']}")
    lines = [BEGIN, "", f"Recorded on {run['machine']}: {'; '.join(recorded)}.", ""]
    runs = [r for r in (run, real) if r]
    if "quality" in run:
        _plot_quality(run, onnx, hybrid, IMAGES / "bench-quality.png")
        lines += [
            "### Retrieval quality",
            "",
            *_quality([r for r in runs if "quality" in r], onnx, hybrid),
            "",
            "![quality](img/bench-quality.png)",
            "",
        ]
    if "freshness" in run:
        _plot_freshness(run, IMAGES / "bench-freshness.png")
        lines += [
            "### Freshness",
            "",
            # A freshness-only rerun is merged into its engine's file (its time is in "freshness_run").
            *_freshness(
                [("run.json", run)] + ([("run-milvus-server.json", real)] if real and "freshness" in real else [])
            ),
            "",
            "![freshness](img/bench-freshness.png)",
            "",
        ]
    engines = [r for r in runs if "latency" in r]
    if engines:
        lines += ["### Query latency and throughput", "", *_latency(engines), "", *_cpu_references(engines)]
        for measured in engines:
            image = f"bench-latency-{measured['engine']}.png"
            _plot_latency(measured, IMAGES / image)
            lines += [f"![latency on {measured['engine']}](img/{image})", ""]
    # ingest.json: one embedder process per core, 1 model thread each; ingest-one-embedder.json: the default.
    ingests = [(name, r) for name in ("ingest.json", "ingest-one-embedder.json") if (r := _load(name))]
    if ingests:
        lines += ["### Ingestion: pipeline vs the embedding model alone", "", *_ingest(ingests), ""]
    if gc := _load("gc-pause.json"):
        lines += ["### Garbage-collection pause", "", *_gc_pause(gc), ""]
    if onnx:
        lines += ["### Embedding backends: ONNX Runtime int8 vs torch", "", *_onnx_speed(onnx), ""]
    return "\n".join([*lines, END])


def main() -> None:
    """CLI entry: rewrite the generated block of docs/benchmarks.md."""
    block = render()
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + block + tail)
    print(f"wrote {DOC} and {IMAGES}/bench-*.png")


if __name__ == "__main__":
    main()
