"""Contract of the embedded topic: the chunks of one document version with their vectors (whole or in parts)."""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np
from pydantic import ConfigDict, Field

from schemas.chunks import Chunk, ChunkedVersion


def pack_vector(vector: np.ndarray) -> str:
    """float32 little-endian, base64: exact and a third the size of JSON floats."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def unpack_vector(packed: str) -> list[float]:
    """Inverse of pack_vector."""
    return np.frombuffer(base64.b64decode(packed), dtype="<f4").tolist()


class EmbeddedChunk(Chunk):
    """A chunk and its embedding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vector: str = Field(description="Embedding as base64 of little-endian float32.")


class EmbeddedDocument(ChunkedVersion[EmbeddedChunk]):
    """A document version ready to index (whole or one part, see ChunkedVersion); a delete has no chunks."""

    schema_version: Literal[1] = 1
    model: str = Field(description="Embedding model that produced the vectors.")
    dim: int = Field(ge=1, description="Vector dimension.")
