"""The ONNX backends, exported locally from the packaged model: onnx gives torch's vectors; onnx-int8 close ones that
rank the same. RAGBUS_API_QUERY_BACKEND picks the API's question encoder to match the index."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from query_api.question_calls import QuestionCalls
from query_api.question_encoder import load_question_encoder, question_embedding
from query_api.service import QueryService
from ragbus.embedding import SentenceEmbedder, resolve_model_path
from ragbus.errors import ConfigError, PermanentError
from ragbus.onnx_embedding import reproduces
from ragbus.settings import ApiSettings, EmbeddingSettings, load_settings

pytestmark = pytest.mark.slow

DOCS = [
    "The koala eats eucalyptus leaves almost exclusively.",
    "Vitamin B12 deficiency raises blood levels of homocysteine.",
    "Kafka topics are split into partitions that keep records in order.",
]
QUERIES = ["What does the koala eat?", "Which vitamin lowers homocysteine?", "How does Kafka order records?"]


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> tuple[SentenceEmbedder, SentenceEmbedder, Path]:
    cache = tmp_path_factory.mktemp("onnx")
    torch = SentenceEmbedder(EmbeddingSettings()).load()
    onnx = SentenceEmbedder(EmbeddingSettings(backend="onnx-int8", onnx_cache_dir=cache)).load()
    return torch, onnx, cache


def test_int8_vectors_are_close_to_torch(backends: tuple[SentenceEmbedder, SentenceEmbedder, Path]) -> None:
    torch, onnx, cache = backends
    assert list(cache.glob("*-int8-per-channel.onnx")), "the export is kept for the next start"
    reference, quantized = torch.encode(DOCS), onnx.encode(DOCS)
    assert quantized.shape == reference.shape == (3, 384)
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-4)
    assert (reference * quantized).sum(axis=1).min() > 0.98


def test_int8_retrieves_what_torch_retrieves(backends: tuple[SentenceEmbedder, SentenceEmbedder, Path]) -> None:
    _, onnx, _ = backends
    scores = onnx.encode(QUERIES) @ onnx.encode(DOCS).T
    assert list(scores.argmax(axis=1)) == [0, 1, 2]


def test_backend_is_part_of_the_cache_identity(backends: tuple[SentenceEmbedder, SentenceEmbedder, Path]) -> None:
    torch, onnx, _ = backends
    # The embedding cache is keyed by model_name: int8 and float vectors must never be mixed.
    assert torch.model_name == "all-MiniLM-L6-v2"
    assert onnx.model_name == "all-MiniLM-L6-v2#onnx-int8"
    assert onnx.max_seq_length == torch.max_seq_length == 256
    assert onnx.token_lengths(DOCS) == torch.token_lengths(DOCS)
    with pytest.raises(PermanentError, match="exceeds"):
        onnx.encode(["word " * 400])


def test_full_precision_onnx_gives_torchs_vectors(
    backends: tuple[SentenceEmbedder, SentenceEmbedder, Path],
) -> None:
    torch, _, cache = backends
    onnx = SentenceEmbedder(EmbeddingSettings(backend="onnx", onnx_cache_dir=cache)).load()
    assert list(cache.glob("*-fp32.onnx")), "kept beside the int8 export, under its own name"
    texts = DOCS + QUERIES + ["a", "word " * 250]  # one token, and a batch padded to the longest
    reference, exported = torch.encode(texts), onnx.encode(texts)
    assert np.abs(exported - reference).max() < 1e-5
    # The same vectors: an index built by either is searched by the other, and they share cached vectors.
    assert onnx.model_name == torch.model_name


def test_the_api_encodes_questions_to_match_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    def chosen(embed: str, query: str) -> str:
        monkeypatch.setenv("RAGBUS_EMBED_BACKEND", embed)
        monkeypatch.setenv("RAGBUS_API_QUERY_BACKEND", query)
        return question_embedding(load_settings()).backend

    assert ApiSettings().query_backend == "auto"
    assert chosen("torch", "auto") == "onnx"  # the same vectors, a faster one-question encode
    assert chosen("onnx", "auto") == "onnx"
    assert chosen("onnx-int8", "auto") == "onnx-int8"
    assert chosen("torch", "torch") == "torch"
    assert chosen("onnx", "torch") == "torch"
    with pytest.raises(ConfigError, match="RAGBUS_EMBED_BACKEND=onnx-int8"):
        chosen("onnx-int8", "onnx")
    # int8 questions approximate the same model: allowed against float vectors too (docs/headroom.md measures it).
    assert chosen("torch", "onnx-int8") == "onnx-int8"
    assert chosen("onnx", "onnx-int8") == "onnx-int8"
    assert chosen("onnx-int8", "onnx-int8") == "onnx-int8"


def test_questions_are_encoded_on_their_own_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    # The embedder's RAGBUS_EMBED_THREADS is for bulk batches; one question takes RAGBUS_API_QUERY_THREADS.
    monkeypatch.setenv("RAGBUS_EMBED_THREADS", "2")
    for backend in ("auto", "torch"):
        monkeypatch.setenv("RAGBUS_API_QUERY_BACKEND", backend)
        assert question_embedding(load_settings()).threads == 1
        monkeypatch.setenv("RAGBUS_API_QUERY_THREADS", "0")
        assert question_embedding(load_settings()).threads == 0
        monkeypatch.delenv("RAGBUS_API_QUERY_THREADS")


def test_a_model_pooled_otherwise_is_never_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The packaged model's files, but pooling on the CLS token: the ONNX encoder would compute other vectors.
    model = tmp_path / "cls-pooled"
    shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), model)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text()) | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    pooling.write_text(json.dumps(config))
    assert reproduces(resolve_model_path("all-MiniLM-L6-v2")) and not reproduces(model)
    # Nor models whose sentence-transformers pipeline changes the text first: lowercasing, a default prompt.
    for name, file, change in (
        ("lowercased", "sentence_bert_config.json", {"do_lower_case": True}),
        ("prompted", "config_sentence_transformers.json", {"default_prompt_name": "query"}),
    ):
        other = tmp_path / name
        shutil.copytree(resolve_model_path("all-MiniLM-L6-v2"), other)
        (other / file).write_text(json.dumps(json.loads((other / file).read_text()) | change))
        assert not reproduces(other), name
    monkeypatch.setenv("RAGBUS_EMBED_MODEL", str(model))
    assert question_embedding(load_settings()).backend == "torch"  # auto keeps torch
    with pytest.raises(ConfigError, match="pools otherwise"):
        SentenceEmbedder(EmbeddingSettings(model=str(model), backend="onnx", onnx_cache_dir=tmp_path)).load()


def test_auto_falls_back_to_torch_when_the_export_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("RAGBUS_EMBED_ONNX_CACHE_DIR", str(blocked / "onnx"))
    encoder = load_question_encoder(load_settings())
    assert encoder.settings.backend == "torch"
    assert "questions are encoded with torch" in caplog.text and "RAGBUS_EMBED_ONNX_CACHE_DIR" in caplog.text
    assert encoder.encode(QUERIES).shape == (3, 384)
    monkeypatch.setenv("RAGBUS_API_QUERY_BACKEND", "onnx")  # named explicitly: a clear error instead
    with pytest.raises(ConfigError, match=r"to ONNX in .* failed"):
        load_question_encoder(load_settings())


@pytest.mark.parametrize("calls", [1, 2])
async def test_int8_questions_encoded_together_get_the_vectors_they_get_alone(
    backends: tuple[SentenceEmbedder, SentenceEmbedder, Path], calls: int
) -> None:
    # Dynamic quantisation scales a call's activations together: one call of several questions gives other vectors.
    _, int8, _ = backends
    alone = np.vstack([int8.encode([question]) for question in QUERIES])
    assert not np.array_equal(int8.encode(QUERIES), alone), "the premise: a shared call changes int8 vectors"
    # The API still gathers concurrent questions (so they reach the search together), one model call each.
    unused: Any = None
    service = QueryService(
        settings=ApiSettings(batch_max=16, query_encode_calls=calls),
        embedder=int8,
        retriever=unused,
        cache=unused,
        flights=unused,
        llm=None,
    )
    try:
        together = await asyncio.gather(*(service.questions.submit(None, question) for question in QUERIES))
    finally:
        await service.aclose()
    assert np.array_equal(np.vstack(together), alone)


async def test_a_batch_cut_into_parallel_calls_keeps_each_questions_vector_in_order(
    backends: tuple[SentenceEmbedder, SentenceEmbedder, Path],
) -> None:
    torch, _, _ = backends
    questions = [*QUERIES, "Where do puffins nest?", "What is BM25?"]
    one_call = torch.encode(questions, check_length=False)
    calls = QuestionCalls(torch, 3)
    try:
        assert calls._threads is not None
        cut = await calls.encode(questions)  # groups of 2, 2 and 1, encoded at the same time
    finally:
        calls.close()
    assert np.abs(np.vstack(cut) - one_call).max() < 1e-5
    [single] = await QuestionCalls(torch, 1).encode(questions[:1])  # one call: on the model's thread
    assert np.abs(single - one_call[0]).max() < 1e-5
