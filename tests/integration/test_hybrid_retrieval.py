"""Hybrid retrieval: BM25 (the server's full-text search) + dense, fused by reciprocal rank fusion.

Where the server does BM25 (milvus-lite 3.2), new collections get the BM25 field and the query API searches both
ways; the Milvus 2.3 engine refuses the BM25 probe, so its collections stay dense-only and answers are dense.
The test document is about a made-up word no embedding knows: dense search ranks it nowhere near a puffin
question, BM25 on that word finds it, and the fused list carries it.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.embedding import SentenceEmbedder
from ragbus.milvus.bm25 import SPARSE_FIELD, supports_bm25
from ragbus.milvus.store import MilvusChunkStore
from schemas.documents import DocumentEvent
from tests.corpus import animal_doc_id
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import Pipeline, environment

pytestmark = [pytest.mark.integration]


def test_hybrid_search_finds_an_exact_word_dense_search_misses(
    pipeline: Pipeline,
    indexed_corpus: list[DocumentEvent],
    engine: str,
    base_servers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = pipeline.settings
    word = f"zyvrax{uuid.uuid4().hex[:6]}"
    doc_id = f"notes/{word}.md"
    note = DocumentEvent(
        doc_id=doc_id,
        title="Maintenance log",
        text=f"The pump serial {word} was replaced on Tuesday after the pressure alarm. The crew logged it.",
    )
    wait_indexed(pipeline, dict(publish(pipeline, [note])))
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        serving = store.alias_target()
        assert serving
        bm25 = store.has_bm25(serving)
        assert bm25 == supports_bm25(store.client)  # asked of the server, and the collection follows the answer
        assert bm25 is (engine == base_servers["milvus-lite"])  # milvus-lite 3.2 does BM25, Milvus 2.3 does not
        question = f"What does the puffin eat? {word}"
        vector = SentenceEmbedder(settings.embedding).load().encode([question], check_length=False)[0].tolist()
        dense = store.search(vector, 3, "default", collection=serving)
        fused = store.search(vector, 3, "default", collection=serving, text=question)
    finally:
        store.close()

    assert dense[0].doc_id == animal_doc_id("puffin")
    assert doc_id not in {hit.doc_id for hit in dense}  # the made-up word means nothing to the embedding
    if bm25:
        assert {hit.doc_id for hit in fused} >= {doc_id, animal_doc_id("puffin")}
        for hit in fused:  # the score is still the cosine to the query, as citations say
            assert -1.0 <= hit.score <= 1.0
        assert {h.chunk_id: round(h.score, 4) for h in fused if h.doc_id == animal_doc_id("puffin")} == {
            h.chunk_id: round(h.score, 4) for h in dense if h.doc_id == animal_doc_id("puffin")
        }
    else:
        assert [h.chunk_id for h in fused] == [h.chunk_id for h in dense]

    # Through the API: hybrid by default, dense with RAGBUS_API_RETRIEVAL=dense. The API logs the mode it serves at
    # start-up and GET /v1/status shows it: dense-only on the Milvus 2.3 engine, with the reason.
    for mode, expect_note in (("hybrid", bm25), ("dense", False)):
        with environment({**pipeline.env, "RAGBUS_API_RETRIEVAL": mode}):
            from ragbus.settings import load_settings

            api_settings = load_settings()
        caplog.clear()
        with (
            caplog.at_level(logging.INFO, logger="ragbus.milvus.retrieval_mode"),
            TestClient(create_app(api_settings)) as api,
        ):
            body = api.post("/v1/query", json={"query": question, "top_k": 3}).json()
            [shown] = api.get("/v1/status").json()["retrieval"]
        cited = {c["doc_id"] for c in body["citations"]}
        assert (doc_id in cited) is expect_note, (mode, body)
        served = "hybrid" if expect_note else "dense-only"
        assert shown["mode"] == served, shown
        assert f"serves {served} retrieval" in caplog.text
        if mode == "dense":
            assert shown["reason"] == "RAGBUS_API_RETRIEVAL=dense"
        elif not bm25:
            assert f"collection {serving} has no BM25 field" in shown["reason"], shown


def test_bm25_leaves_english_stop_words_out(
    pipeline: Pipeline, indexed_corpus: list[DocumentEvent], engine: str, base_servers: dict[str, str]
) -> None:
    """Every corpus chunk holds "the", "of" and "and": BM25 matches none of them on those words alone."""
    if engine != base_servers["milvus-lite"]:
        pytest.skip("the Milvus 2.3 engine has no BM25 (the test above shows it stays dense)")
    store = MilvusChunkStore(pipeline.settings.milvus, pipeline.settings.milvus_uri)
    try:
        serving = store.alias_target()
        assert serving and store.has_bm25(serving)

        def bm25(text: str) -> list[str]:
            hits = store.client.search(
                serving,
                data=[text],
                anns_field=SPARSE_FIELD,
                limit=5,
                output_fields=["text"],
                search_params={"metric_type": "BM25"},
            )
            return [hit["entity"]["text"] for hit in hits[0]] if hits else []

        only_stop_words = bm25("The and of the")
        with_a_word = bm25("the puffin and the of")
    finally:
        store.close()
    assert only_stop_words == []
    assert with_a_word  # the one real word still finds its chunks, and only those: no chunk matched on "the"
    assert all("puffin" in text.lower() for text in with_a_word), with_a_word


def test_several_questions_in_one_call_get_what_each_gets_alone(
    pipeline: Pipeline, indexed_corpus: list[DocumentEvent]
) -> None:
    # What the API's search batches rely on (query_api.search_batches): one multi-query call, dense and hybrid,
    # gives each question the hits and scores it gets searched alone, in order.
    from concurrent.futures import ThreadPoolExecutor

    from ragbus.settings import load_settings

    settings = pipeline.settings
    questions = ["What does the puffin eat?", "Where do koalas live?", "How fast is a cheetah?", "zebra stripes"]
    vectors = [v.tolist() for v in SentenceEmbedder(settings.embedding).load().encode(questions, check_length=False)]
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        serving = store.alias_target()
        for texts in (None, questions):
            together = store.search_many(vectors, 4, "default", collection=serving, texts=texts)
            alone = [
                store.search(v, 4, "default", collection=serving, text=texts[i] if texts else None)
                for i, v in enumerate(vectors)
            ]
            assert [[(h.chunk_id, round(h.score, 4)) for h in hits] for hits in together] == [
                [(h.chunk_id, round(h.score, 4)) for h in hits] for hits in alone
            ]
            assert len(together) == len(questions)
        assert store.search_many(vectors, 4, "nobody", collection=serving, texts=questions) == [[]] * 4
    finally:
        store.close()

    # Through an API without the query cache, at the same time: each answer cites what it cites asked alone.
    with environment({**pipeline.env, "RAGBUS_REDIS_QUERY_CACHE_TTL_S": "0"}):
        uncached = load_settings()
    with TestClient(create_app(uncached)) as api:

        def ask(question: str) -> list[str]:
            response = api.post("/v1/query", json={"query": question, "top_k": 3, "retrieve_only": True})
            assert response.status_code == 200, response.text
            return [c["doc_id"] for c in response.json()["citations"]]

        alone_answers = [ask(q) for q in questions]
        with ThreadPoolExecutor(len(questions) * 2) as pool:
            together_answers = list(pool.map(ask, questions * 2))
    assert together_answers == alone_answers * 2
    assert alone_answers[0][0] == animal_doc_id("puffin")


def test_a_search_breadth_is_accepted_by_both_engines_and_finds_the_same_in_a_small_collection(
    pipeline: Pipeline, indexed_corpus: list[DocumentEvent]
) -> None:
    # RAGBUS_MILVUS_SEARCH_EF widens the real engine's HNSW search (bench.scale measures its recall on a million
    # chunks); a small collection is searched exactly either way, so every breadth finds the same, dense and hybrid.
    # A breadth below top_k goes up to top_k, which the engine would otherwise refuse.
    settings = pipeline.settings
    question = "What does the puffin eat?"
    vector = SentenceEmbedder(settings.embedding).load().encode([question], check_length=False)[0].tolist()
    found: dict[int, list[list[str]]] = {}
    for ef in (0, 8, 512):
        store = MilvusChunkStore(settings.milvus.model_copy(update={"search_ef": ef}), settings.milvus_uri)
        try:
            serving = store.alias_target()
            found[ef] = [
                [h.chunk_id for h in store.search(vector, 10, "default", collection=serving, text=text)]
                for text in (None, question)
            ]
        finally:
            store.close()
    assert found[0][0] and found[8] == found[0] and found[512] == found[0]
