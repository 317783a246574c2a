"""Structured JSON logs on stderr, one object per line, with the correlation id when there is one."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


CORRELATION_HEADER = "ragbus.correlation_id"


def correlation_of(headers: object) -> str | None:
    """The correlation id a Kafka record carries, if any."""
    for name, value in headers or ():  # type: ignore[attr-defined]
        if name == CORRELATION_HEADER and value:
            return bytes(value).decode(errors="replace")
    return None


@contextlib.contextmanager
def correlated(cid: str | None) -> Iterator[None]:
    """Log lines inside the block carry `cid`."""
    token = correlation_id.set(cid)
    try:
        yield
    finally:
        correlation_id.reset(token)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line."""
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": self.process_name,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (cid := correlation_id.get()) is not None:
            entry["correlation_id"] = cid
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(process_name: str, level: str = "INFO") -> None:
    """Route every logger (ours, FastStream's, uvicorn's) through the JSON formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "pymilvus", "httpx", "httpx2", "sentence_transformers", "faststream.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
