"""`ragbus eval JUDGED_DIR`: retrieval quality (nDCG@10, recall@10/100, MRR@10) on a BEIR-layout judged set."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Annotated

import orjson
import typer

from ragbus.cli.progress import CountedProgress
from ragbus.cli.settings import command_settings
from ragbus.errors import RagbusError
from ragbus.evaluation import ApiRanker, EvaluationReport, ProgressCallback, evaluate
from ragbus.judged_set import JudgedSet, load_judged_set
from ragbus.quality_gate import evaluate_collection


def eval_command(
    *,
    judged_dir: Annotated[Path, typer.Argument(help="Judged set in the BEIR layout: queries.jsonl, qrels/*.tsv.")],
    collection: Annotated[
        str | None, typer.Option(help="Search this collection directly instead of through the query API.")
    ] = None,
    direct: Annotated[
        bool, typer.Option("--direct", help="Search the collection the alias serves directly, not through the API.")
    ] = False,
    api_url: Annotated[str | None, typer.Option(help="Query API (default: RAGBUS_API_URL or :8000).")] = None,
    credential: Annotated[str | None, typer.Option(envvar="RAGBUS_API_KEY", help="API key or JWT.")] = None,
    split: Annotated[str | None, typer.Option(help="qrels/<split>.tsv (default: test).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N judged queries.")] = None,
    tenant: Annotated[
        str, typer.Option(help="Tenant searched directly (through the API: the credential's).")
    ] = "default",
    worst: Annotated[int, typer.Option(min=0, help="Rows of the worst-queries table.")] = 10,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object (means and worst queries).")] = False,
) -> None:
    """Score retrieval on judged queries: through the running API, or directly against a named collection."""
    try:
        judged = load_judged_set(judged_dir, split, limit)
        # With --json only the JSON goes to stdout; otherwise a bar (a terminal) or progress lines.
        bar = None if json_ else CountedProgress("ranked", len(judged.queries), unit="queries")
        progress = bar.update if bar else None
        with contextlib.nullcontext() if bar is None else bar:  # the bar prints its last line only on success
            report = _run(
                judged,
                collection=collection,
                direct=direct,
                api_url=api_url,
                credential=credential,
                tenant=tenant,
                progress=progress,
            )
    except RagbusError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    if json_:
        typer.echo(orjson.dumps(report.as_json(worst), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(report, worst)


def _run(
    judged: JudgedSet,
    *,
    collection: str | None,
    direct: bool,
    api_url: str | None,
    credential: str | None,
    tenant: str,
    progress: ProgressCallback | None,
) -> EvaluationReport:
    if collection or direct:
        return asyncio.run(
            evaluate_collection(command_settings(), judged, collection, tenant=tenant, on_progress=progress)
        )
    url = api_url or os.environ.get("RAGBUS_API_URL") or "http://127.0.0.1:8000"
    with ApiRanker(url, credential) as ranker:
        return evaluate(judged, ranker, url, progress)


def _print(report: EvaluationReport, worst: int) -> None:
    summary = report.summary()
    typer.echo(f"{summary['judged_set']}: {summary['queries']} queries on {summary['target']}")
    typer.echo(
        f"nDCG@10 {summary['ndcg_at_10']:.4f}  recall@10 {summary['recall_at_10']:.4f}  "
        f"recall@100 {summary['recall_at_100']:.4f}  MRR@10 {summary['mrr_at_10']:.4f}"
    )
    if int(str(summary["min_documents_ranked"])) < 100:
        typer.echo(f"(some queries ranked only {summary['min_documents_ranked']} documents: recall@100 counts those)")
    rows = report.worst(worst)
    if not rows:
        return
    typer.echo(f"\nworst {len(rows)} queries by nDCG@10:")
    typer.echo(f"{'nDCG@10':>8} {'R@100':>6} {'RR@10':>6}  {'query id':<12} query")
    for row in rows:
        text = row.query if len(row.query) <= 70 else row.query[:69] + "…"
        figures = f"{row.ndcg_at_10:8.4f} {row.recall_at_100:6.3f} {row.reciprocal_rank_at_10:6.3f}"
        typer.echo(f"{figures}  {row.query_id:<12} {text}")
