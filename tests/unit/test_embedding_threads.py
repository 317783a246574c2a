"""RAGBUS_EMBED_THREADS: how many threads one model call uses, and the model's calls on one thread of their own."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from ragbus.embedding import SentenceEmbedder
from ragbus.settings import EmbeddingSettings

pytestmark = pytest.mark.slow

# In a child process: torch's thread count is process-wide, and this test process keeps its default.
CHILD = """
import torch
from ragbus.embedding import SentenceEmbedder
from ragbus.settings import EmbeddingSettings
before = torch.get_num_threads()
embedder = SentenceEmbedder(EmbeddingSettings()).load()
embedder.encode(["one passage"])
print(before, torch.get_num_threads())
"""


@pytest.mark.parametrize(("threads", "expected"), [("1", 1), ("0", None)])
def test_embed_threads_sets_the_model_threads(threads: str, expected: int | None) -> None:
    env = {**os.environ, "RAGBUS_EMBED_THREADS": threads, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True, timeout=120
    )
    before, after = (int(n) for n in out.stdout.split()[-2:])
    assert after == (expected or before)


def test_the_model_runs_on_one_thread_of_its_own() -> None:
    embedder = SentenceEmbedder(EmbeddingSettings()).load()

    async def calls() -> tuple[set[str], np.ndarray]:
        names = await asyncio.gather(
            *(embedder.on_model_thread(lambda: threading.current_thread().name) for _ in range(8))
        )
        return set(names), await embedder.encode_async(["a koala eats leaves"])

    try:
        names, vectors = asyncio.run(calls())
        assert len(names) == 1 and names.pop().startswith("ragbus-model")
        assert vectors.shape == (1, embedder.dim)
        np.testing.assert_allclose(vectors, embedder.encode(["a koala eats leaves"]), atol=1e-5)
    finally:
        embedder.close()
