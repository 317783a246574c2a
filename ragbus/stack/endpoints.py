"""Where a running embedded stack can be reached, written by `ragbus up` for the other CLI commands."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

FILE = "endpoints.json"


def write_endpoints(home: Path, env: dict[str, str]) -> None:
    """Record the stack's URLs and the pid of `ragbus up`, so a record left by a killed stack is ignored."""
    (home / FILE).write_bytes(orjson.dumps({"pid": os.getpid(), "env": env}, option=orjson.OPT_INDENT_2))


def clear_endpoints(home: Path) -> None:
    """Forget them (the stack stopped)."""
    (home / FILE).unlink(missing_ok=True)


def apply_endpoints(home: Path) -> bool:
    """Fill unset RAGBUS_* URL variables from a running stack's record, so `ragbus publish` just works.

    True when a running stack's record was found there."""
    path = home / FILE
    try:
        record = orjson.loads(path.read_bytes())
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return False  # no stack running
    for name, value in record["env"].items():
        os.environ.setdefault(name, value)
    return True
