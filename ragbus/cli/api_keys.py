"""`ragbus api-key create`: a new API key for one tenant, and the hashed entry the server is configured with."""

from __future__ import annotations

from typing import Annotated

import typer

api_key_app = typer.Typer(help="API keys of the query API (the server stores only their hashes).", no_args_is_help=True)


@api_key_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="Tenant the key is bound to.")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="read (query, feedback), write (documents).")
    ] = None,
) -> None:
    """Print a new key (give it to the caller) and its RAGBUS_API_KEYS entry (give it to the server)."""
    from query_api.security.api_keys import key_entry, new_key
    from query_api.security.principal import Scope, parse_scopes
    from ragbus.errors import RagbusError

    try:
        scopes = parse_scopes(scope or [Scope.READ.value], separators=",+")
    except ValueError:
        typer.secho("error: scopes are read and write", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    key = new_key()
    try:
        entry = key_entry(key, tenant, scopes)
    except RagbusError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"key:   {key}")
    typer.echo(f"entry: {entry}")
    typer.echo("Add the entry to RAGBUS_API_KEYS (comma-separated) or RAGBUS_API_KEYS_FILE; the key is not stored.")
