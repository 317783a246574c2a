"""record_parts: a document version's chunks in as many Kafka records as its size needs.

A long document cut into small chunks outgrows one record once its chunks carry vectors (about 2 KB of vector per
chunk at 384 dimensions: at 64-token chunks, a 65 KB page was over the 1 MB default). Such a version travels as
consecutive parts (schemas.chunks.ChunkedVersion), each within RAGBUS_KAFKA_MAX_MESSAGE_BYTES; the indexer applies
them as they come and the version is whole once the collection holds all of its chunks.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.chunks import ChunkedVersion
from schemas.codec import encode

# Per chunk in a list: the separating comma. The header's size is measured with an empty chunk list.
_SEPARATOR = 1


def encode_in_parts(version: ChunkedVersion[Any], max_bytes: int) -> list[bytes]:
    """The version as one record when it fits `max_bytes`, else as records of consecutive chunks that each fit.

    A single chunk too large for a record on its own stays in a part of its own: the producer refuses that record
    (message_too_large), and its input is dead-lettered with the reason.
    """
    whole = encode(version)
    if len(whole) <= max_bytes or len(version.chunks) < 2:
        return [whole]
    total = version.total_chunks
    header = len(encode(version.model_copy(update={"chunks": [], "chunk_total": total})))
    budget = max_bytes - header
    parts: list[list[Any]] = [[]]
    used = 0
    for chunk in version.chunks:
        size = len(orjson.dumps(chunk.model_dump(mode="json"))) + _SEPARATOR
        if parts[-1] and used + size > budget:
            parts.append([])
            used = 0
        parts[-1].append(chunk)
        used += size
    return [encode(version.model_copy(update={"chunks": part, "chunk_total": total})) for part in parts]
