"""RAGBUS_API_QUERY_BACKEND=onnx-int8 against an index of float vectors: int8 questions find the same documents, and
their answers are cached apart from the float questions' (other vectors can rank otherwise).

The animal corpus is shared by the session's tests, and some change it (test_pipeline deletes the hoatzin and the
sloth, and adds a second koi document with the same text): an animal counts only where float questions find it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from schemas.documents import DocumentEvent
from tests.corpus import ANIMALS
from tests.integration.test_answering_cache import invalidations_applied
from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration]


@pytest.fixture
def int8_api(pipeline: Pipeline, indexed_corpus: list[DocumentEvent]) -> Iterator[TestClient]:
    settings = pipeline.settings
    api = settings.api.model_copy(update={"query_backend": "onnx-int8"})
    with TestClient(create_app(type(settings)(**{**settings.__dict__, "api": api}))) as client:
        yield client


def ranked(api: TestClient, query: str) -> tuple[list[tuple[str, str]], bool]:
    """(doc_id, text) of each passage, best first, and whether the answer came from the cache."""
    response = api.post("/v1/query", json={"query": query, "top_k": 3, "retrieve_only": True})
    assert response.status_code == 200, response.text
    body = response.json()
    return [(c["doc_id"], c["text"]) for c in body["citations"]], body["cached"]


def test_int8_questions_find_what_float_questions_find_and_are_cached_apart(
    pipeline: Pipeline, api: TestClient, int8_api: TestClient
) -> None:
    assert pipeline.settings.embedding.backend == "torch"  # the index holds float vectors
    invalidations_applied(pipeline)  # an answer computed while the tenant changes is not cached
    compared = 0
    for animal in ANIMALS:
        question = f"What does the {animal} eat?"
        as_float, _ = ranked(api, question)
        as_int8, cached = ranked(int8_api, question)
        assert cached is False, "an answer the float questions cached is not served for int8 ones"
        if not as_float or f"The {animal} " not in as_float[0][1]:
            continue  # deleted by another test of the session
        compared += 1
        assert f"The {animal} " in as_int8[0][1], (animal, as_float, as_int8)
        assert as_int8[0] in as_float, (animal, as_float, as_int8)  # a tie (two koi documents) may swap them
        again, cached = ranked(int8_api, question)
        assert again == as_int8 and cached is True
    assert compared >= len(ANIMALS) - 3
