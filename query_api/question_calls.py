"""How one batch of concurrent questions reaches the model (RAGBUS_API_QUERY_ENCODE_CALLS).

The batch is cut into `calls` groups (fewer for a smaller batch), encoded at the same time, each call on a thread of
its own (with RAGBUS_API_QUERY_THREADS=1, the default, the call computes on that thread alone): several
single-threaded calls keep the cores busy without the spinning of one call on a thread per core (docs/headroom.md).
With one call, and for a lone question, the batch is encoded on the model's own thread, as everything else that
calls the model is. (With torch and RAGBUS_API_QUERY_THREADS=0 each calling thread keeps a team of threads per core:
keep one call there.)

A group is one model call, except with int8 weights, where each question is a call of its own: dynamic quantisation
scales a call's activations together, so a question's vector would otherwise depend on the questions it came with.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

from ragbus.embedding import SentenceEmbedder


def split_evenly(items: list[str], parts: int) -> list[list[str]]:
    """`items` in `parts` contiguous groups whose sizes differ by at most one."""
    size, larger = divmod(len(items), parts)
    bounds = [index * size + min(index, larger) for index in range(parts + 1)]
    return [items[start:end] for start, end in pairwise(bounds)]


class QuestionCalls:
    """Encodes a batch of questions in up to `calls` model calls at once."""

    def __init__(self, embedder: SentenceEmbedder, calls: int) -> None:
        if calls < 1:
            raise ValueError(f"at least one call, not {calls}")
        self.embedder, self.calls = embedder, calls
        self.one_call_per_question = embedder.settings.backend == "onnx-int8"
        self._threads = ThreadPoolExecutor(calls, thread_name_prefix="ragbus-question") if calls > 1 else None

    def _encode_group(self, questions: list[str]) -> list[np.ndarray]:
        if self.one_call_per_question:
            return [self.embedder.encode([question], check_length=False)[0] for question in questions]
        return list(self.embedder.encode(questions, check_length=False))

    async def encode(self, questions: list[str]) -> list[np.ndarray]:
        """One unit vector per question, in order."""
        if self._threads is None or len(questions) == 1:
            return await self.embedder.on_model_thread(lambda: self._encode_group(questions))
        groups = split_evenly(questions, min(self.calls, len(questions)))
        loop = asyncio.get_running_loop()
        parts = await asyncio.gather(*(loop.run_in_executor(self._threads, self._encode_group, g) for g in groups))
        return [vector for part in parts for vector in part]

    def close(self) -> None:
        """Stop the threads once their work is done."""
        if self._threads is not None:
            self._threads.shutdown(wait=True)
