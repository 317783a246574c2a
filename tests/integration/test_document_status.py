"""Per-document status (GET /v1/documents/{doc_id}, `ragbus doc`): indexed, deleted, in flight, dead-lettered,
unknown, and another tenant's document invisible."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from query_api.app import create_app
from ragbus.document_publisher import delete_events, publish_documents
from ragbus.kafka_clients import KafkaEventProducer, OutboundMessage
from ragbus.settings import load_settings
from schemas.documents import DocumentEvent, document_key
from schemas.topics import Topics
from tests.pipeline_helpers import publish, wait_indexed
from tests.security_keys import Credentials
from tests.stack_fixtures import Pipeline, environment, wait_for

pytestmark = [pytest.mark.integration]


def ragbus_doc(env: dict[str, str], doc_id: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "RAGBUS_STACK_HOME": str(cwd / "no-stack")}
    return subprocess.run(
        [sys.executable, "-m", "ragbus", "doc", doc_id], check=False, cwd=cwd, env=full, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip


def note(doc_id: str) -> DocumentEvent:
    return DocumentEvent(doc_id=doc_id, title="Tides", text="Spring tides follow the new and the full moon. " * 3)


def test_an_indexed_then_deleted_document(pipeline: Pipeline, api: TestClient, tmp_path: Path) -> None:
    doc_id = f"status/tides-{uuid.uuid4().hex[:6]}.md"
    version = publish(pipeline, [note(doc_id)])[("default", doc_id)]
    wait_indexed(pipeline, {("default", doc_id): version})
    body = api.get(f"/v1/documents/{doc_id}").json()
    assert body["indexed_version"] == version and body["deleted"] is False and body["chunks"] >= 1, body
    assert body["in_flight"] == [] and body["dead_letter"] is None and body["searchable_since"] is None
    shown = ragbus_doc(pipeline.env, doc_id, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"{doc_id}: version {version} searchable, {body['chunks']} chunks" in shown.stdout
    deleted = publish(pipeline, delete_events("default", [doc_id]))[("default", doc_id)]
    wait_indexed(pipeline, {("default", doc_id): None})
    body = api.get(f"/v1/documents/{doc_id}").json()
    assert (body["indexed_version"], body["deleted"], body["chunks"]) == (deleted, True, 0), body


def test_an_unknown_document_is_a_404(api: TestClient, pipeline: Pipeline, tmp_path: Path) -> None:
    response = api.get("/v1/documents/status/never-published.md")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    shown = ragbus_doc(pipeline.env, "status/never-published.md", tmp_path)
    assert shown.returncode == 1 and "not indexed" in shown.stdout


def test_a_version_no_worker_took_yet_is_in_flight_at_the_extractor(pipeline: Pipeline, tmp_path: Path) -> None:
    # A deployment (topic prefix) whose workers are not running: the event waits on the documents topic.
    env = {**pipeline.env, "RAGBUS_KAFKA_TOPIC_PREFIX": f"idle{uuid.uuid4().hex[:6]}"}
    with environment(env):
        idle = load_settings()
    doc_id = "status/waiting.md"
    version = asyncio.run(publish_documents(idle, [note(doc_id)])).versions[("default", doc_id)]
    shown = ragbus_doc(env, doc_id, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"in flight: version {version} waiting for the extractor" in shown.stdout


def test_a_rejected_event_shows_its_dead_letter_reason(pipeline: Pipeline, api: TestClient) -> None:
    doc_id = f"status/broken-{uuid.uuid4().hex[:6]}.md"
    topic = Topics(pipeline.settings.kafka.topic_prefix).documents

    async def send_garbage() -> None:
        async with KafkaEventProducer(pipeline.settings) as producer:
            await producer.send_all([OutboundMessage(topic, document_key("default", doc_id), b"not json", [])])

    asyncio.run(send_garbage())

    def rejected() -> bool:
        response = api.get(f"/v1/documents/{doc_id}")
        return response.status_code == 200 and response.json()["dead_letter"] is not None

    wait_for(rejected, timeout_s=120, interval_s=1, message="the extractor to dead-letter the message")
    letter = api.get(f"/v1/documents/{doc_id}").json()["dead_letter"]
    assert letter["stage"] == "extractor" and letter["version"] is None and "JSON" in letter["error"], letter


@pytest.fixture(scope="module")
def keyed_api(pipeline: Pipeline) -> Iterator[tuple[TestClient, Credentials]]:
    creds = Credentials()
    with environment({**pipeline.env, **creds.env()}):
        settings = load_settings()
    with TestClient(create_app(settings)) as client:
        yield client, creds


def test_another_tenants_document_is_not_visible(pipeline: Pipeline, keyed_api: tuple[TestClient, Credentials]) -> None:
    api, creds = keyed_api
    doc_id = f"status/acme-{uuid.uuid4().hex[:6]}.md"
    sent = api.post(
        "/v1/documents",
        json={"doc_id": doc_id, "text": "Acme's tide tables."},
        headers={"X-API-Key": creds.keys["acme"]},
    )
    assert sent.status_code == 202, sent.text
    wait_indexed(pipeline, {("acme", doc_id): sent.json()["versions"][0]})
    mine = api.get(f"/v1/documents/{doc_id}", headers={"X-API-Key": creds.keys["acme_ro"]})
    assert mine.status_code == 200 and mine.json()["indexed_version"] == sent.json()["versions"][0]
    theirs = api.get(f"/v1/documents/{doc_id}", headers={"X-API-Key": creds.keys["globex"]})
    assert theirs.status_code == 404 and doc_id in theirs.json()["error"]["message"]
