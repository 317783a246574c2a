"""The model the query API encodes questions with (RAGBUS_API_QUERY_BACKEND), matched to the index's vectors."""

from __future__ import annotations

import logging

from ragbus.embedding import SentenceEmbedder, resolve_model_path
from ragbus.errors import ConfigError
from ragbus.onnx_embedding import reproduces
from ragbus.settings import EmbeddingSettings, Settings

log = logging.getLogger(__name__)


def question_embedding(settings: Settings) -> EmbeddingSettings:
    """The embedding settings for questions; ConfigError for float questions against an int8 index.

    auto: the ONNX export at full precision where the index holds torch's vectors and the export reproduces the
    model (mean pooling), else the index's own backend. onnx-int8 against an index of float vectors is allowed: the
    int8 weights approximate the same model, so its questions find nearly the same chunks in about a third of the time.
    """
    indexed, chosen = settings.embedding.backend, settings.api.query_backend
    threads = settings.api.query_threads
    if chosen == "auto":
        exportable = indexed == "torch" and reproduces(resolve_model_path(settings.embedding.model))
        return settings.embedding.model_copy(update={"backend": "onnx" if exportable else indexed, "threads": threads})
    if indexed == "onnx-int8" and chosen != "onnx-int8":
        raise ConfigError(
            f"RAGBUS_API_QUERY_BACKEND={chosen} gives float vectors, but RAGBUS_EMBED_BACKEND=onnx-int8 indexes "
            "int8 ones: set RAGBUS_API_QUERY_BACKEND=auto"
        )
    return settings.embedding.model_copy(update={"backend": chosen, "threads": threads})


def load_question_encoder(settings: Settings) -> SentenceEmbedder:
    """The loaded question encoder. Blocking: call from a thread.

    Under auto, an ONNX export that cannot be made (no onnxruntime, a cache directory it cannot write) falls back to
    torch, which gives the same vectors; a backend named explicitly fails instead.
    """
    chosen = question_embedding(settings)
    try:
        return SentenceEmbedder(chosen).load()
    except ConfigError as exc:
        if settings.api.query_backend != "auto" or chosen.backend == settings.embedding.backend:
            raise
        log.warning("questions are encoded with torch: %s", exc)
        return SentenceEmbedder(settings.embedding.model_copy(update={"threads": settings.api.query_threads})).load()
