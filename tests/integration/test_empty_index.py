"""A query before anything is indexed returns an empty, well-formed answer (no alias yet, or an empty one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from query_api.extractive import NO_MATCH
from ragbus.embedding import model_dimension
from ragbus.milvus.store import MilvusChunkStore
from tests.stack_fixtures import Pipeline, pipeline_env

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("alias_exists", [False, True])
def test_query_on_an_empty_index_is_well_formed(
    base_servers: dict[str, str], tmp_path: Path, alias_exists: bool
) -> None:
    empty = Pipeline(pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"]), tmp_path)
    settings = empty.settings
    if alias_exists:
        store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
        store.ensure_alias(settings.milvus.initial_collection, model_dimension(settings.embedding))
        store.close()
    with TestClient(create_app(settings)) as api:
        response = api.post("/v1/query", json={"query": "Is anything indexed?"})
        assert response.status_code == 200
        assert response.json() == {
            "answer": NO_MATCH,
            "citations": [],
            "cached": False,
            "degraded": False,
            "took_ms": response.json()["took_ms"],
        }


def test_bad_requests_get_json_errors_with_codes(base_servers: dict[str, str], tmp_path: Path) -> None:
    empty = Pipeline(pipeline_env(base_servers["kafka"], base_servers["milvus-lite"], base_servers["redis"]), tmp_path)
    with TestClient(create_app(empty.settings)) as api:
        for body in ({"query": "   "}, {"query": "x", "top_k": 0}, {"top_k": 3}, {"query": "a\x00b"}):
            response = api.post("/v1/query", json=body)
            assert response.status_code == 422, body
            assert response.json()["error"]["code"] == "invalid_request"
        response = api.post("/v1/query", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_request"
