"""Real documents end to end: files made by real writers, stored in a real SeaweedFS, extracted by the extractor
worker, chunked, embedded and indexed by real worker processes on tansu and milvus-lite, asked through the API."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from producers.sources.files import read_documents
from query_api.app import create_app
from ragbus.dead_letters import list_dead_letters
from ragbus.document_publisher import publish_documents
from ragbus.milvus.filters import milvus_str
from ragbus.milvus.store import MilvusChunkStore
from ragbus.object_store import S3ObjectStore
from ragbus.pipelines import PipelineContext
from ragbus.reindex import Reindexer, ReindexOptions
from ragbus.reindex_progress import measure
from schemas.documents import DocumentEvent, DocumentOp, original_ref
from schemas.topics import STAGES
from tests.documents.samples import FOOTER, docx_bytes, html_page, image_only_pdf_bytes, pdf_bytes, pptx_bytes
from tests.pipeline_helpers import ask, wait_indexed
from tests.stack_fixtures import Pipeline, pipeline_env, running_pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 300_000
INLINE_MAX = 2_000  # the report PDF, the Word and PowerPoint files are stored; small pages travel inline
HARBOUR = "The Varnholm harbour crane lifts forty tonnes of granite blocks onto the barges."
MARKDOWN = b"""# Operations guide

How ragbus keeps answers fresh: every change of a document is an event.

## Commands

| Command | Shows |
|---|---|
| `ragbus status` | topics, consumer lag and dead letters |
| `ragbus dlq list` | every dead-lettered message with its reason |
"""


@pytest.fixture(scope="module")
def docs_pipeline(base_servers: dict[str, str], seaweedfs: dict[str, str], stack_home: Path) -> Iterator[Pipeline]:
    """A deployment whose extractor reads originals from SeaweedFS, or inline up to 2 KB (small batches, a 300 KB
    size limit)."""
    env = pipeline_env(
        base_servers["kafka"],
        base_servers["milvus-lite"],
        base_servers["redis"],
        **seaweedfs,
        RAGBUS_OBJECTS_BUCKET=f"docs-{uuid.uuid4().hex[:10]}",
        RAGBUS_EXTRACT_MAX_BYTES=str(MAX_BYTES),
        RAGBUS_OBJECTS_INLINE_MAX_BYTES=str(INLINE_MAX),
        RAGBUS_WORKER_MAX_RECORDS="4",
    )
    with running_pipeline(env, stack_home) as running:
        yield running


@pytest.fixture(scope="module")
def docs_api(docs_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(docs_pipeline.settings)) as client:
        yield client


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per format, written by its real writer."""
    folder = tmp_path_factory.mktemp("documents")
    contents = {
        "report.pdf": pdf_bytes(
            [
                "The lighthouse keeper of Varnholm writes down every passing ship at dawn.",
                HARBOUR,
                "The Varnholm bakery sells cardamom buns on Sunday mornings only.",
            ],
            title="Varnholm annual report",
            sections=["Lighthouse", "Harbour", "Bakery"],
        ),
        "tomatoes.html": html_page(
            "Growing tomatoes",
            "Growing tomatoes on a balcony",
            [
                "Tomato plants need at least six hours of direct sunlight every day to ripen their fruit.",
                "Water the pots deeply twice a week, and pinch out the side shoots as the plants climb.",
            ],
        ),
        "handbook.docx": docx_bytes(
            "Staff handbook",
            {"Parental leave": ["Every employee receives thirty days of paid parental leave per child."]},
            table=[["Expense", "Limit"], ["Train ticket", "forty euros per trip"]],
        ),
        "roadmap.pptx": pptx_bytes([("Roadmap", ["Q3 goal: migrate the billing service to Rust", "Q4 goal: SOC 2"])]),
        "operations.md": MARKDOWN,
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in contents}


def publish(pipeline: Pipeline, events: list[DocumentEvent], originals: dict[str, bytes] | None = None) -> dict:
    return asyncio.run(publish_documents(pipeline.settings, events, originals=originals)).versions


def rows_of(pipeline: Pipeline, doc_id: str) -> list[dict[str, object]]:
    settings = pipeline.settings
    store = MilvusChunkStore(settings.milvus, settings.milvus_uri)
    try:
        return store.client.query(
            settings.milvus.alias,
            filter=f"doc_id == {milvus_str(doc_id)}",
            output_fields=["chunk_id", "version", "text", "cite_page", "cite_section"],
            consistency_level="Strong",
        )
    finally:
        store.close()


def objects(pipeline: Pipeline) -> S3ObjectStore:
    return S3ObjectStore(pipeline.settings.objects)


@pytest.fixture(scope="module")
def indexed(docs_pipeline: Pipeline, files: dict[str, Path]) -> dict[str, DocumentEvent]:
    """Every format published as `ragbus publish` does (originals stored first) and indexed."""
    events = read_documents(list(files.values()))
    wait_indexed(docs_pipeline, publish(docs_pipeline, events))
    return {Path(e.source or "").name: e for e in events}


def test_each_format_is_searchable_by_its_own_text(docs_api: TestClient, indexed: dict[str, DocumentEvent]) -> None:
    questions = {
        "tomatoes.html": "How many hours of sunlight do tomato plants need?",
        "handbook.docx": "How many days of paid parental leave does an employee get?",
        "roadmap.pptx": "What is the Q3 goal for the billing service?",
        "operations.md": "Which command shows the consumer lag?",
        "report.pdf": "How heavy are the granite blocks the harbour crane lifts?",
    }
    for name, question in questions.items():
        top = ask(docs_api, question)["citations"][0]  # type: ignore[index]
        assert top["doc_id"] == indexed[name].doc_id, (name, top)
    assert indexed["report.pdf"].original is not None and indexed["operations.md"].original is None
    titles = {name: ask(docs_api, q)["citations"][0]["title"] for name, q in questions.items()}  # type: ignore[index]
    assert titles["report.pdf"] == "Varnholm annual report"  # from the PDF's metadata
    assert titles["handbook.docx"] == "Staff handbook"


def test_boilerplate_and_markup_are_not_indexed(docs_pipeline: Pipeline, indexed: dict[str, DocumentEvent]) -> None:
    page = " ".join(str(r["text"]) for r in rows_of(docs_pipeline, indexed["tomatoes.html"].doc_id))
    assert "six hours of direct sunlight" in page
    for boilerplate in (FOOTER[:25], "Careers", "Accept all cookies", "Related posts"):
        assert boilerplate not in page
    markdown = " ".join(str(r["text"]) for r in rows_of(docs_pipeline, indexed["operations.md"].doc_id))
    assert "Command: ragbus status; Shows: topics, consumer lag and dead letters" in markdown
    assert "|" not in markdown and "`" not in markdown and "#" not in markdown
    handbook = rows_of(docs_pipeline, indexed["handbook.docx"].doc_id)
    assert {r["cite_section"] for r in handbook} >= {"Staff handbook > Parental leave"}


def test_a_pdf_answer_cites_its_page_and_section(docs_api: TestClient, indexed: dict[str, DocumentEvent]) -> None:
    body = ask(docs_api, "How heavy are the granite blocks the harbour crane lifts?", top_k=1)
    citation = body["citations"][0]  # type: ignore[index]
    assert citation["doc_id"] == indexed["report.pdf"].doc_id
    assert "forty tonnes of granite" in " ".join(citation["text"].split())
    assert citation["page"] == 2 and citation["section"] == "Harbour"
    bakery = ask(docs_api, "When does the bakery sell cardamom buns?", top_k=1)["citations"][0]  # type: ignore[index]
    assert bakery["page"] == 3


def test_an_update_replaces_the_chunks_and_a_delete_removes_them_and_the_original(
    docs_pipeline: Pipeline, indexed: dict[str, DocumentEvent], files: dict[str, Path]
) -> None:
    old = indexed["handbook.docx"]
    assert old.original is not None
    store = objects(docs_pipeline)
    try:
        assert store.exists(old.original.key)
        files["handbook.docx"].write_bytes(
            docx_bytes("Staff handbook", {"Parental leave": ["Every employee now receives sixty days of leave."]})
        )
        [new] = read_documents([files["handbook.docx"]])
        assert new.original is not None and new.original.sha256 != old.original.sha256
        wait_indexed(docs_pipeline, publish(docs_pipeline, [new]))
        rows = rows_of(docs_pipeline, new.doc_id)
        assert {r["version"] for r in rows} == {new.version}
        text = " ".join(str(r["text"]) for r in rows)
        assert "sixty days" in text and "thirty days" not in text
        wait_for(lambda: not store.exists(old.original.key), timeout_s=30, message="the replaced original removed")  # type: ignore[union-attr]
        assert store.exists(new.original.key)

        delete = DocumentEvent(op=DocumentOp.DELETE, doc_id=new.doc_id)
        wait_indexed(docs_pipeline, {**publish(docs_pipeline, [delete]), (delete.tenant, delete.doc_id): None})
        assert rows_of(docs_pipeline, new.doc_id) == []
        wait_for(lambda: not store.exists(new.original.key), timeout_s=30, message="the deleted original removed")  # type: ignore[union-attr]
    finally:
        store.close()


def test_a_file_uploaded_to_the_api_is_indexed_with_its_pages(docs_pipeline: Pipeline, docs_api: TestClient) -> None:
    memo = pdf_bytes(["Memo cover page.", "The quarterly llama census counted 312 llamas in the valley."], title="Memo")
    response = docs_api.post(
        "/v1/documents",
        files={"file": ("memo.pdf", memo, "application/pdf")},
        data={"doc_id": "memos/census"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    wait_indexed(docs_pipeline, {("default", "memos/census"): body["versions"][0]})
    rows = rows_of(docs_pipeline, "memos/census")
    assert {(r["cite_page"], " ".join(str(r["text"]).split())) for r in rows} == {
        (1, "Memo cover page."),
        (2, "The quarterly llama census counted 312 llamas in the valley."),
    }
    citations = ask(docs_api, "How many llamas did the census count?")["citations"]
    memo_citations = [c for c in citations if c["doc_id"] == "memos/census"]  # type: ignore[attr-defined,index]
    assert [(c["page"], c["title"]) for c in memo_citations][:1] == [(2, "Memo")], citations
    refused = docs_api.post("/v1/documents", files={"file": ("tool.exe", b"MZ", "application/octet-stream")})
    assert refused.status_code == 422 and "unsupported type" in refused.text
    # the OpenAPI document describes the upload as a second content type of POST /v1/documents
    body = docs_api.get("/openapi.json").json()["paths"]["/v1/documents"]["post"]["requestBody"]
    assert set(body["content"]) == {"application/json", "multipart/form-data"}
    form = body["content"]["multipart/form-data"]["schema"]
    assert (form["required"], set(form["properties"])) == (["file"], {"file", "doc_id", "title"})


BAD_INPUTS = {
    "corrupt.pdf": ("application/pdf", b"%PDF-1.7\n this file was cut off in the middle of an obj", "corrupt_pdf"),
    "locked.pdf": ("application/pdf", pdf_bytes(["the secret plans"], password="s3cret"), "encrypted_pdf"),
    "scan.pdf": ("application/pdf", image_only_pdf_bytes(), "no_text_layer"),
    "empty.docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", b"", "empty_file"),
    "huge.html": ("text/html", b"<p>" + b"too big " * (MAX_BYTES // 8) + b"</p>", "too_large"),
    "photo.png": ("image/png", b"\x89PNG\r\n\x1a\n not really an image", "unknown_media_type"),
}


def test_each_bad_input_is_dead_lettered_with_its_reason_and_the_pipeline_flows_on(
    docs_pipeline: Pipeline, docs_api: TestClient
) -> None:
    events, originals = [], {}
    for name, (media_type, data, _) in BAD_INPUTS.items():
        ref = original_ref(data)
        originals[ref.sha256] = data
        events.append(DocumentEvent(doc_id=f"bad/{name}", media_type=media_type, original=ref, source=name))
    after = DocumentEvent(doc_id="bad/after.txt", text="The pipeline kept flowing: zebras graze after the storm.")
    versions = publish(docs_pipeline, [*events, after], originals)
    wait_indexed(docs_pipeline, {(after.tenant, after.doc_id): versions[(after.tenant, after.doc_id)]})

    def reasons() -> dict[str, str]:
        letters = asyncio.run(list_dead_letters(docs_pipeline.settings, "extractor"))
        return {(letter.key or b"").decode(): letter.reason.error_code for letter in letters}

    expected = {f"bad/{name}": code for name, (_, _, code) in BAD_INPUTS.items()}
    wait_for(lambda: expected.items() <= reasons().items(), timeout_s=60, message="every bad input dead-lettered")
    listed = subprocess.run(
        [sys.executable, "-m", "ragbus", "dlq", "list", "--stage", "extractor"],
        check=True, cwd=ROOT, env=docs_pipeline.env, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    for doc_id, code in expected.items():
        assert any(doc_id in line and f"\t{code}\t" in line for line in listed.splitlines()), (doc_id, listed)
    assert "RAGBUS_EXTRACT_MAX_BYTES" in listed and "encrypted" in listed


def test_sigkill_of_the_extractor_mid_batch_loses_and_duplicates_nothing(docs_pipeline: Pipeline) -> None:
    events, originals = [], {}
    for i in range(48):
        data = html_page(f"Log {i}", f"Shipment log {i}", [f"Shipment {i} carried {i * 7} crates of oranges."] * 3)
        if i % 2:  # every other page past the inline limit (a comment the extraction drops): stored
            data += b"<!-- " + b"padding " * (INLINE_MAX // 8) + b"-->"
        ref = original_ref(data)
        originals[ref.sha256] = data
        events.append(DocumentEvent(doc_id=f"crash/{i:02d}.html", media_type="text/html", original=ref))
    before = docs_pipeline.metric("extractor", "ragbus_stage_messages_total")
    versions = publish(docs_pipeline, events, originals)
    wait_for(
        lambda: docs_pipeline.metric("extractor", "ragbus_stage_messages_total") >= before + 8,
        timeout_s=120, interval_s=0.05, message="the extractor under way",
    )  # fmt: skip
    victim = docs_pipeline.worker("extractor")
    victim.signal(signal.SIGKILL)
    assert victim.wait_stopped(5)
    docs_pipeline.start_worker("extractor")
    wait_indexed(docs_pipeline, versions)
    docs_pipeline.wait_drained()
    for event in events:
        rows = rows_of(docs_pipeline, event.doc_id)
        assert [r["version"] for r in rows] == [event.version], event.doc_id  # one chunk each, that version
    stored = objects(docs_pipeline)
    try:
        # the stored half kept, the inline half never stored
        refs = [e.original for e in events if e.original]
        assert [stored.exists(ref.key) for ref in refs] == [ref.size > INLINE_MAX for ref in refs] == [False, True] * 24
    finally:
        stored.close()


def test_a_reindex_with_the_same_extractor_parses_nothing_again(docs_pipeline: Pipeline) -> None:
    settings = docs_pipeline.settings
    new = f"{settings.milvus.alias}_again"
    spec = asyncio.run(Reindexer(settings).start(ReindexOptions(collection=new)))
    for stage in STAGES:
        docs_pipeline.start_worker(stage, RAGBUS_WORKER_PIPELINE=new)
    context = PipelineContext.of(settings, spec)
    wait_for(lambda: asyncio.run(measure(context)).caught_up, timeout_s=300, interval_s=1, message="reindex caught up")
    replay = f"extractor@{new}"
    assert docs_pipeline.metric(replay, 'ragbus_extractor_documents_total{outcome="extracted"}') == 0
    # Every current original came from the cache: the 48 shipment logs, the PDF report, the web page, the deck and
    # the uploaded memo (the handbook was deleted; its two versions' originals are gone, so they are superseded).
    hits = docs_pipeline.metric(replay, 'ragbus_extractor_documents_total{outcome="cache_hit"}')
    assert hits == 48 + 4
    assert docs_pipeline.metric(replay, 'ragbus_extractor_documents_total{outcome="superseded"}') == 2
