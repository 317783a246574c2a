"""The `ragbus` command: up, publish, delete, query, worker, api."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import httpx
import typer

from ragbus.cli.api_keys import api_key_app
from ragbus.cli.quarantine import dlq_quarantine
from ragbus.cli.settings import command_settings as _settings
from ragbus.cli.settings import fail as _fail
from ragbus.cli.status import status_command
from ragbus.errors import RagbusError
from ragbus.logging_setup import configure_logging
from ragbus.settings import Settings, load_settings

app = typer.Typer(
    help="ragbus: event-driven RAG. Documents flow through Kafka into Milvus; a REST API answers with citations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
DEMO_QUESTION = "How do I run the tests?"


class Stage(StrEnum):
    """Pipeline workers."""

    extractor = "extractor"
    chunker = "chunker"
    embedder = "embedder"
    indexer = "indexer"


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="Publish the project's README and docs/ and wait until indexed.")] = False,
) -> None:
    """Start the embedded stack (Kafka, Milvus, Redis, workers, API) in the foreground; Ctrl-C stops it all."""
    from ragbus.stack.launcher import EmbeddedStack

    settings = _settings(use_running_stack=False)
    stack = EmbeddedStack(settings)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    failed = False
    try:
        os.environ.update(stack.start_servers())
        running = load_settings()
        stack.prepare(running)
        stack.start_apps(running)
        if demo:
            _publish_demo(running)
        _print_ready(stack.api_url, stack.metrics_urls())
        ticks = 0
        while True:
            stack.check_alive()
            time.sleep(1)
            ticks += 1
            if ticks % 5 == 0:
                stack.supervise()
    except KeyboardInterrupt:
        typer.echo("stopping ...")
    except (RagbusError, typer.Exit) as exc:
        failed = True
        if isinstance(exc, RagbusError):
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    finally:
        # Whatever happened, nothing this command started outlives it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started = time.monotonic()
        stack.stop()
        typer.echo(f"stopped in {time.monotonic() - started:.1f}s")
    if failed:
        raise typer.Exit(1)


def _project_root() -> Path:
    root = Path(__file__).resolve().parents[2]
    return root if (root / "README.md").exists() else Path.cwd()


def _publish_demo(settings: Settings) -> None:
    from ragbus.cli.publish import publish_with_progress, read_with_progress
    from ragbus.cli.wait import wait_for_documents

    root = _project_root()
    paths = [p for p in (root / "README.md", root / "docs") if p.exists()]
    events = read_with_progress(paths, tenant="default")
    report = publish_with_progress(settings, events)
    typer.echo(f"published {report.events} demo documents to {report.topic}; waiting until they are searchable ...")
    wait_for_documents(settings, report, timeout_s=600)


def _print_ready(api_url: str, metrics: dict[str, str]) -> None:
    body = '{"query": "' + DEMO_QUESTION + '", "top_k": 3}'
    scrape = "".join(f"    {name:<18} {url}\n" for name, url in metrics.items())
    typer.echo(
        "\nragbus is up.\n"
        f"  Web:    {api_url}/   (ask in the browser)\n"
        f"  API:    {api_url}   (OpenAPI docs: {api_url}/docs)\n"
        f"  Query:  curl -s {api_url}/v1/query -H 'content-type: application/json' -d '{body}'\n"
        "  Stop:   Ctrl-C\n"
        f"  Metrics (Prometheus: infra/prometheus/prometheus-embedded.yml):\n{scrape}"
    )


@app.command()
def publish(  # noqa: PLR0917 - one parameter per option
    paths: Annotated[list[Path], typer.Argument(help="Files (.txt, .md, .jsonl) or directories (recursive).")],
    tenant: Annotated[str, typer.Option(help="Tenant owning the documents.")] = "default",
    wait: Annotated[bool, typer.Option(help="Wait until every document is searchable.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 600.0,
    versions: Annotated[
        bool, typer.Option(help="Print each document's version as JSON (a query's min_versions).")
    ] = False,
    bulk: Annotated[
        bool | None,
        typer.Option(
            "--bulk/--live",
            help="Lane: bulk never delays live edits. Default: bulk from RAGBUS_KAFKA_BULK_THRESHOLD documents on.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Publish documents (create or update) to the documents topic, keyed by document id.

    Shows files read, events sent and bytes (a bar on a terminal, periodic lines otherwise); with --wait, then
    follows the documents until searchable and prints how many were indexed, dead-lettered or still pending.
    """
    from ragbus.cli.publish import publish_with_progress, read_with_progress
    from ragbus.cli.wait import wait_for_documents

    settings = _settings()
    try:
        events = read_with_progress(paths, tenant)
        if not events:
            _fail("no .txt, .md or .jsonl documents found under the given paths")
        report = publish_with_progress(settings, events, bulk=bulk)
    except RagbusError as exc:
        _fail(f"{exc}\nnothing was published" if exc.code == "invalid_input" else str(exc))
    typer.echo(f"published {report.events} documents ({report.bytes} bytes) to {report.topic}")
    if versions:
        typer.echo(json.dumps({doc_id: v for (_, doc_id), v in report.versions.items()}))
    if wait:
        wait_for_documents(settings, report, timeout_s=timeout)


@app.command()
def delete(
    doc_ids: Annotated[list[str], typer.Argument(help="Document ids to delete.")],
    tenant: Annotated[str, typer.Option(help="Tenant owning the documents.")] = "default",
    wait: Annotated[bool, typer.Option(help="Wait until the documents are gone from the index.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 120.0,
) -> None:
    """Publish delete events for documents."""
    from ragbus.document_publisher import delete_documents

    settings = _settings()
    try:
        report = asyncio.run(delete_documents(settings, tenant, doc_ids))
    except RagbusError as exc:
        _fail(str(exc))
    typer.echo(f"published {report.events} deletes to {report.topic}")
    if wait:
        from ragbus.cli.wait import wait_for_documents

        wait_for_documents(settings, report, timeout_s=timeout, deleted=True)


@app.command()
def query(
    question: Annotated[str, typer.Argument(help="The question.")],
    top_k: Annotated[int, typer.Option(help="Passages to retrieve.")] = 5,
    api_url: Annotated[str | None, typer.Option(envvar="RAGBUS_API_URL", help="Query API base URL.")] = None,
    credential: Annotated[
        str | None, typer.Option("--api-key", envvar="RAGBUS_QUERY_API_KEY", help="API key or JWT (auth on).")
    ] = None,
) -> None:
    """Ask the query API and print the answer with its citations."""
    _settings()
    url = api_url or os.environ.get("RAGBUS_API_URL") or "http://127.0.0.1:8000"
    try:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        response = httpx.post(f"{url}/v1/query", json={"query": question, "top_k": top_k}, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        _fail(f"query API at {url} unreachable ({exc}); start it with `ragbus up` or set RAGBUS_API_URL")
    body = response.json()
    if response.status_code != 200:
        _fail(f"{body.get('error', {}).get('code')}: {body.get('error', {}).get('message')}")
    typer.echo(body["answer"])
    typer.echo("")
    flags = [name for name in ("cached", "degraded") if body.get(name)]
    for n, citation in enumerate(body["citations"], 1):
        typer.echo(
            f"[{n}] {citation['title'] or citation['doc_id']}  ({citation['doc_id']}, score {citation['score']:.3g})"
        )
    if flags:
        typer.echo(f"({', '.join(flags)})")


app.command("status")(status_command)
app.add_typer(api_key_app, name="api-key")
dlq_app = typer.Typer(
    help="Dead-lettered messages: list them, replay them after a fix, quarantine a stuck one.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")
dlq_app.command("quarantine")(dlq_quarantine)
StageOption = Annotated[list[Stage] | None, typer.Option("--stage", help="Only this stage (repeatable).")]


@dlq_app.command("list")
def dlq_list(stage: StageOption = None) -> None:
    """Show every dead-lettered message with its stage, reason and whether it was replayed."""
    from ragbus.dead_letters import list_dead_letters

    settings = _settings()
    total = 0
    for name in stage or list(Stage):
        try:
            letters = asyncio.run(list_dead_letters(settings, name.value))
        except RagbusError as exc:
            _fail(str(exc))
        for letter in letters:
            total += 1
            key = (letter.key or b"").decode(errors="replace")
            state = "replayed" if letter.replayed else "pending"
            typer.echo(
                f"{name.value}\t{letter.partition}:{letter.offset}\t{state}\t{letter.reason.error_code}\t"
                f"key={key!r}\t{letter.reason.error}"
            )
    typer.echo(f"{total} dead-lettered messages")


@dlq_app.command("replay")
def dlq_replay(stage: StageOption = None) -> None:
    """Re-publish pending dead letters to the topic they came from (after fixing what rejected them)."""
    from ragbus.dead_letters import replay_dead_letters

    settings = _settings()
    for name in stage or list(Stage):
        try:
            count = asyncio.run(replay_dead_letters(settings, name.value))
        except RagbusError as exc:
            _fail(str(exc))
        typer.echo(f"{name.value}: replayed {count} messages")


@app.command()
def worker(
    stage: Annotated[Stage, typer.Argument(help="Which pipeline stage to run.")],
    pipeline: Annotated[
        str | None,
        typer.Option(envvar="RAGBUS_WORKER_PIPELINE", help="Collection of a reindex pipeline; default: the first."),
    ] = None,
) -> None:
    """Run one pipeline worker (consumes until SIGTERM, then finishes its batch and commits)."""
    configure_logging(f"worker-{stage.value}")
    if pipeline:
        os.environ["RAGBUS_WORKER_PIPELINE"] = pipeline
    settings = _settings()
    from importlib import import_module

    from ragbus.pipelines import resolve_pipeline

    module = import_module(f"workers.{stage.value}.app")
    try:
        context = asyncio.run(resolve_pipeline(settings))
        asyncio.run(module.create_app(context).run())
    except RagbusError as exc:
        _fail(str(exc))


@app.command()
def api() -> None:
    """Run the query API (uvicorn) on RAGBUS_API_HOST:RAGBUS_API_PORT."""
    import uvicorn

    from query_api.app import create_app

    configure_logging("api")
    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,
        port=settings.api.port,
        log_config=None,
        timeout_graceful_shutdown=5,
    )


def _register_reindex_commands() -> None:
    from ragbus.cli.eval import eval_command
    from ragbus.cli.reindex import reindex_command, replay_command

    app.command("eval")(eval_command)
    app.command("reindex")(reindex_command)
    app.command("replay")(replay_command)
    from ragbus.cli.sources import source_app, watch_command

    app.add_typer(source_app, name="source")
    app.command("watch")(watch_command)
    from ragbus.cli.doc import doc_command

    app.command("doc")(doc_command)


_register_reindex_commands()


def main() -> None:
    """Entry point."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        app()
    except RagbusError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(1)
