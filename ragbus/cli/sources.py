"""`ragbus source postgres|debezium` and `ragbus watch`: long-running change sources (until SIGTERM)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from ragbus.cli.settings import command_settings, fail
from ragbus.errors import RagbusError
from ragbus.logging_setup import configure_logging

source_app = typer.Typer(help="Follow a system of record and publish its changes as document events.")


@source_app.command("postgres")
def postgres_command(  # noqa: PLR0917 - one parameter per option
    table: Annotated[str, typer.Option(help="Table to follow ([schema.]name).")],
    id_column: Annotated[str, typer.Option("--id", help="Column of the document id (in the replica identity).")],
    text_column: Annotated[str, typer.Option("--text", help="Column of the document text.")],
    title_column: Annotated[str | None, typer.Option("--title", help="Column of the title.")] = None,
    metadata: Annotated[str, typer.Option(help="Comma-separated columns copied into metadata.")] = "",
    tenant: Annotated[str, typer.Option(help="Tenant owning the documents.")] = "default",
    dsn: Annotated[
        str | None,
        typer.Option(envvar="RAGBUS_SOURCE_POSTGRES_DSN", help="libpq connection string.", show_default=False),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Slot and publication name (default ragbus_<table>).")] = None,
    drop_slot: Annotated[bool, typer.Option("--drop-slot", help="Remove the slot and publication, then exit.")] = False,
) -> None:
    """Follow a table by logical replication: a snapshot of its rows, then every insert, update and delete."""
    from producers.sources.postgres import drop_table_source, follow_table
    from producers.sources.postgres_setup import PostgresTableSpec

    configure_logging("source-postgres")
    settings = command_settings()
    secret = dsn or (settings.source.postgres_dsn.get_secret_value() if settings.source.postgres_dsn else None)
    if not secret:
        fail("no database: pass --dsn or set RAGBUS_SOURCE_POSTGRES_DSN")
    spec = PostgresTableSpec(
        dsn=str(secret),
        table=table,
        id_column=id_column,
        title_column=title_column,
        text_column=text_column,
        metadata_columns=tuple(c.strip() for c in metadata.split(",") if c.strip()),
        tenant=tenant,
        name=name,
    )
    try:
        if drop_slot:
            removed = drop_table_source(spec)
            typer.echo(f"removed {', '.join(removed)}" if removed else "nothing to remove")
            return
        asyncio.run(follow_table(settings, spec))
    except RagbusError as exc:
        fail(str(exc))


@source_app.command("debezium")
def debezium_command(  # noqa: PLR0917 - one parameter per option
    topic: Annotated[
        str, typer.Option(help="The Debezium change topic (JSON converter), e.g. dbserver1.public.articles.")
    ],
    id_field: Annotated[str, typer.Option("--id", help="Row field of the document id.")],
    text_field: Annotated[str, typer.Option("--text", help="Row field of the document text.")],
    title_field: Annotated[str | None, typer.Option("--title", help="Row field of the title.")] = None,
    metadata: Annotated[str, typer.Option(help="Comma-separated row fields copied into metadata.")] = "",
    tenant: Annotated[str, typer.Option(help="Tenant owning the documents.")] = "default",
    group: Annotated[
        str | None, typer.Option(help="Consumer group (default <prefix>.source-debezium.<topic>).")
    ] = None,
) -> None:
    """Turn a Debezium change topic (ops c, u, d, r; tombstones) into document events."""
    from producers.sources.debezium import follow_debezium
    from producers.sources.debezium_envelope import DebeziumMapping

    configure_logging("source-debezium")
    settings = command_settings()
    fields = tuple(f.strip() for f in metadata.split(",") if f.strip())
    mapping = DebeziumMapping(id_field, text_field, title_field, fields, tenant)
    try:
        asyncio.run(follow_debezium(settings, topic, mapping, group))
    except RagbusError as exc:
        fail(str(exc))


def watch_command(
    folders: Annotated[list[Path], typer.Argument(help="Folders to keep in sync (recursive).")],
    include: Annotated[str | None, typer.Option(help="Only files matching this glob (e.g. '*.md').")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant owning the documents.")] = "default",
    manifest: Annotated[
        Path | None, typer.Option(help="Manifest file (default: one per folder set under RAGBUS_SOURCE_STATE_DIR).")
    ] = None,
) -> None:
    """Keep folders in sync: creates, edits, renames and deletes become document events (until SIGTERM).

    At start, publishes exactly what changed since the last run (its manifest), deletes included.
    """
    from producers.sources.watch import watch_folders

    configure_logging("source-watch")
    settings = command_settings()
    try:
        asyncio.run(watch_folders(settings, folders, include, tenant, manifest))
    except RagbusError as exc:
        fail(str(exc))
