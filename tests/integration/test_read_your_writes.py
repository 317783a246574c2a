"""Read-your-writes: POST /v1/query with min_versions waits for the index, times out with 409, and skips the cache."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from query_api.cache import CachedAnswer, CacheKeys
from ragbus.document_publisher import delete_events
from schemas.documents import DocumentEvent
from tests.integration.test_answering_cache import bird, cited, invalidations_applied
from tests.integration.test_cli import ragbus
from tests.pipeline_helpers import publish, wait_indexed
from tests.stack_fixtures import Pipeline

pytestmark = [pytest.mark.integration]
QUESTION = "What does the {} mimic in the breeding season?"
# The session's collection holds every test's songbirds, and a made-up bird name is no word the embedding model
# knows: each question is scoped to this module's run by a metadata filter, so no other test's bird can rank first.
RUN = {"ryw_run": uuid.uuid4().hex[:8]}


def songbird(doc_id: str, name: str, sound: str) -> DocumentEvent:
    return bird(doc_id, name, sound, metadata=RUN)


def ask_after(
    api: TestClient, query: str, min_versions: dict[str, int], timeout_s: float = 120, filters: dict[str, str] = RUN
) -> dict[str, object]:
    body = {
        "query": query, "top_k": 1, "filters": filters, "min_versions": min_versions,
        "min_versions_timeout_s": timeout_s,
    }  # fmt: skip
    response = api.post("/v1/query", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


def test_min_versions_waits_for_the_published_version_and_answers_with_its_text(
    pipeline: Pipeline, api: TestClient
) -> None:
    doc_id = f"ryw/kokako-{uuid.uuid4().hex[:6]}.md"
    wait_indexed(pipeline, dict(publish(pipeline, [songbird(doc_id, "kokako", "ringtones")])))
    # Published and asked at once: without the wait, the answer would come from the first version (or nothing).
    version = publish(pipeline, [songbird(doc_id, "kokako", "car alarms")])[("default", doc_id)]
    answer = ask_after(api, QUESTION.format("kokako"), {doc_id: version})
    assert cited(answer) == [doc_id] and "car alarms" in str(answer["answer"]) and answer["cached"] is False


def test_min_versions_past_the_bound_is_a_409_naming_the_pending_documents(pipeline: Pipeline, api: TestClient) -> None:
    doc_id = f"ryw/tui-{uuid.uuid4().hex[:6]}.md"
    version = publish(pipeline, [songbird(doc_id, "tieke", "doorbells")])[("default", doc_id)]
    wait_indexed(pipeline, {("default", doc_id): version})
    unknown = f"ryw/never-{uuid.uuid4().hex[:6]}.md"
    body = {
        "query": QUESTION.format("tieke"),
        "filters": RUN,
        "min_versions": {doc_id: version + 1, unknown: 1},
        "min_versions_timeout_s": 0.5,
    }
    response = api.post("/v1/query", json=body)
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "versions_pending" and response.headers["Retry-After"] == "1"
    assert error["pending"] == {
        doc_id: {"wanted": version + 1, "indexed": version},
        unknown: {"wanted": 1, "indexed": None},
    }
    assert doc_id in error["message"] and unknown in error["message"]
    # The version already indexed (or an older one) answers at once.
    answer = ask_after(api, QUESTION.format("tieke"), {doc_id: version - 1}, timeout_s=0.5)
    assert cited(answer) == [doc_id] and "doorbells" in str(answer["answer"])


def test_min_versions_never_serves_an_answer_cached_before_those_versions(pipeline: Pipeline, api: TestClient) -> None:
    """The index shows a version a moment before the cache-invalidation consumer applies it; this test holds the
    cache in exactly that moment (the first version's answer, valid at the current generation) and asks both ways."""
    doc_id = f"ryw/lyrebird-{uuid.uuid4().hex[:6]}.md"
    question = QUESTION.format("spotted bowerbird")
    # Scoped to this document: with top_k 1, the hybrid search fuses one dense and one BM25 hit, and another
    # songbird of this module that tops the dense list ties with this one (it did once in CI).
    scope = {**RUN, "ryw_doc": doc_id}

    def version_of(sound: str) -> DocumentEvent:
        return bird(doc_id, "spotted bowerbird", sound, metadata=scope)

    wait_indexed(pipeline, dict(publish(pipeline, [version_of("camera shutters")])))
    invalidations_applied(pipeline)
    body = {"query": question, "top_k": 1, "filters": scope}
    assert "camera shutters" in str(api.post("/v1/query", json=body).json()["answer"])
    settings = pipeline.settings
    keys = CacheKeys(settings.redis.namespace, settings.milvus.alias)
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    try:
        (entry_key,) = [k for k in client.smembers(keys.citing("default", doc_id)) if b":a:" in k]
        stale = CachedAnswer.model_validate_json(client.get(entry_key))
        version = publish(pipeline, [version_of("fire sirens")])[("default", doc_id)]
        wait_indexed(pipeline, {("default", doc_id): version})
        invalidations_applied(pipeline)
        generation = int(client.get(keys.generation("default")) or 0)
        client.set(entry_key, stale.model_copy(update={"generation": generation}).model_dump_json(), ex=600)
        served = api.post("/v1/query", json=body).json()
        assert served["cached"] is True and "camera shutters" in served["answer"]  # what a plain query gets now
        fresh = ask_after(api, question, {doc_id: version}, filters=scope)
        assert fresh["cached"] is False and "fire sirens" in str(fresh["answer"])
        streamed = api.post("/v1/query", json={**body, "stream": True, "min_versions": {doc_id: version}})
        assert streamed.status_code == 200 and "fire sirens" in streamed.text and "camera shutters" not in streamed.text
    finally:
        client.close()


def test_a_delete_at_or_after_the_version_satisfies_min_versions(pipeline: Pipeline, api: TestClient) -> None:
    doc_id = f"ryw/moa-{uuid.uuid4().hex[:6]}.md"
    publish(pipeline, [songbird(doc_id, "moa", "bellbirds")])
    deleted = publish(pipeline, delete_events("default", [doc_id]))[("default", doc_id)]
    # Only the delete reaches this version: the wait ends once the document is gone, and the answer never cites it.
    answer = ask_after(api, QUESTION.format("moa"), {doc_id: deleted})
    assert doc_id not in cited(answer), json.dumps(answer)[:300]


def test_publish_prints_the_versions_a_query_can_wait_for(pipeline: Pipeline, api: TestClient, tmp_path: Path) -> None:
    note = tmp_path / f"ryw-{uuid.uuid4().hex[:6]}.md"
    note.write_text("# Kiwi\n\nThe kiwi forages at night and probes the leaf litter with its long bill for worms.")
    published = ragbus(pipeline, "publish", note.name, "--versions", cwd=tmp_path)
    assert published.returncode == 0, published.stderr
    versions = json.loads(published.stdout.strip().splitlines()[-1])
    assert list(versions) == [note.name] and isinstance(versions[note.name], int)
    # A published file carries no metadata; the kiwi's words are the module's own.
    answer = ask_after(api, "What does the kiwi probe the leaf litter for at night?", versions, filters={})
    assert cited(answer) == [note.name] and "worms" in str(answer["answer"])
