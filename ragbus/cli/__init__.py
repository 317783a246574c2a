"""The `ragbus` command: the top layer, which wires the core, the sources, the workers and the query API.

Nothing below it imports it. One module per command group (`publish`, `wait`, `reindex`, `api_keys`); `app`
holds the typer application and `main`.
"""

from ragbus.cli.app import app, main

__all__ = ["app", "main"]
