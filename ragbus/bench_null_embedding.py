"""`RAGBUS_EMBED_BACKEND=bench-null`: deterministic vectors at next to no cost, to benchmark the pipeline without
the model (`bench.pipeline_ceiling`). The vectors mean nothing: the settings refuse this backend unless
RAGBUS_BENCH_NULL_EMBEDDINGS is set, which only the benchmarks do.

Each text's vector is read from SHAKE-128 of its UTF-8 bytes: the same text always gets the same vector (the
embedding cache and a redelivered batch behave as with a model), different texts point in unrelated directions
(Milvus indexes and searches a spread of vectors, not one point), and every vector has unit length, as the
model's do. About a microsecond a text, against milliseconds for the model on a CPU.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ragbus.errors import ConfigError


class NullEncoder:
    """Unit-length float32 vectors of `dim` derived from each text alone."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    @classmethod
    def like(cls, model_path: Path) -> NullEncoder:
        """Vectors of the dimension of the model at `model_path` (its collections and schemas stay the same)."""
        pooling = model_path / "1_Pooling" / "config.json"
        if not pooling.exists():
            raise ConfigError(f"RAGBUS_EMBED_BACKEND=bench-null needs the model's dimension: no {pooling}")
        return cls(int(json.loads(pooling.read_text())["word_embedding_dimension"]))

    def encode(self, texts: list[str]) -> np.ndarray:
        """One vector per text, in order."""
        raw = b"".join(hashlib.shake_128(text.encode()).digest(self.dim) for text in texts)
        vectors = np.frombuffer(raw, dtype=np.int8).astype(np.float32).reshape(len(texts), self.dim) + 0.5
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
