"""The benchmark-only embedding backend: refused by production settings, deterministic and free where allowed."""

from __future__ import annotations

import numpy as np
import pytest

from ragbus.embedding import SentenceEmbedder
from ragbus.errors import ConfigError
from ragbus.settings import load_settings


def test_production_settings_refuse_the_bench_null_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGBUS_BENCH_NULL_EMBEDDINGS", raising=False)
    monkeypatch.setenv("RAGBUS_EMBED_BACKEND", "bench-null")
    with pytest.raises(ConfigError, match="RAGBUS_BENCH_NULL_EMBEDDINGS"):
        load_settings()
    monkeypatch.setenv("RAGBUS_BENCH_NULL_EMBEDDINGS", "0")  # set, but not to a true value
    with pytest.raises(ConfigError, match="RAGBUS_EMBED_BACKEND=bench-null"):
        load_settings()


def test_bench_null_vectors_are_deterministic_unit_vectors_of_the_models_dimension(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAGBUS_EMBED_BACKEND", "bench-null")
    monkeypatch.setenv("RAGBUS_BENCH_NULL_EMBEDDINGS", "1")
    embedder = SentenceEmbedder(load_settings().embedding).load()
    texts = ["koalas eat eucalyptus", "kafka keeps logs", "koalas eat eucalyptus"]
    vectors = embedder.encode(texts)
    assert "model" not in embedder.__dict__  # no model was loaded
    assert vectors.shape == (3, embedder.dim) and embedder.dim == 384 and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[0], embedder.encode(texts[:1])[0])
    assert abs(float(vectors[0] @ vectors[1])) < 0.3  # unrelated texts, unrelated directions
    assert embedder.model_name == "all-MiniLM-L6-v2#bench-null"  # never shares the model's embedding cache
    assert embedder.token_lengths(texts[:1]) == [7]  # the model's own tokenizer still measures the chunks
