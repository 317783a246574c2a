"""POST /v1/documents and DELETE /v1/documents/{doc_id}: publish document events for the caller's tenant;
GET /v1/documents/{doc_id}: where one of its documents stands."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, status
from pydantic import Field, TypeAdapter, ValidationError

from query_api.deps import PublisherDep, Reader, SettingsDep, StoreDep, Writer
from query_api.document_requests import MAX_BATCH, DocumentIn, DocumentsAccepted
from query_api.document_status import DocumentStatusOut
from query_api.error_responses import AUTHENTICATED, error_responses
from query_api.errors import Conflict, DocumentTooLong, InvalidRequest, NotFound
from query_api.routes.document_uploads import UPLOAD_FORM
from query_api.superseding import superseding_versions
from query_api.validation import line_problem
from ragbus.document_publisher import delete_events
from ragbus.document_status import document_status
from schemas.bounds import version_problem
from schemas.documents import DocumentEvent
from schemas.fields import DOC_ID_PATTERN, DocId
from schemas.topics import Lane

router = APIRouter(prefix="/v1", tags=["documents"])
_ERRORS = error_responses(*AUTHENTICATED, 409)
_DOC_ID: TypeAdapter[str] = TypeAdapter(DocId)


def _valid_id(doc_id: str) -> None:
    try:
        _DOC_ID.validate_python(doc_id)
    except ValidationError as exc:
        raise InvalidRequest(f"doc_id: {exc.errors()[0]['msg']}") from None
    if problem := line_problem(doc_id):
        raise InvalidRequest(f"doc_id: {problem}")


def _accepted(events: list[DocumentEvent]) -> DocumentsAccepted:
    return DocumentsAccepted(
        event_ids=[e.event_id for e in events], doc_ids=[e.doc_id for e in events], versions=[e.version for e in events]
    )


@router.post(
    "/documents",
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
    openapi_extra={  # the upload route's form (document_uploads.py), a second content type of this body
        "requestBody": {
            "description": f"JSON: one document or a list of 1 to {MAX_BATCH}. multipart/form-data: one file "
            "(`file`), optionally with `doc_id` and `title`.",
            "content": UPLOAD_FORM,
        }
    },
)
async def publish_documents(
    body: Annotated[
        DocumentIn | Annotated[list[DocumentIn], Field(min_length=1, max_length=MAX_BATCH)],
        Body(description=f"One document or a list of 1 to {MAX_BATCH}."),
    ],
    caller: Writer,
    settings: SettingsDep,
    store: StoreDep,
    publisher: PublisherDep,
) -> DocumentsAccepted:
    """Create or replace documents of the caller's tenant (published to Kafka; indexed asynchronously).

    A multipart/form-data body uploads one file instead (PDF, HTML, Word, PowerPoint, Markdown or text): its original
    is stored in object storage and the extractor stage reads it; an unsupported file name is refused with 422."""
    documents = body if isinstance(body, list) else [body]
    limit = settings.chunking.max_document_chars
    for document in documents:
        if len(document.text) > limit:
            raise DocumentTooLong(
                f"document {document.doc_id!r} has {len(document.text)} characters, over {limit} "
                "(RAGBUS_CHUNK_MAX_DOCUMENT_CHARS): split it"
            )
    # A document without a version supersedes whatever version is indexed (query_api.superseding).
    unversioned = [d.doc_id for d in documents if d.version is None]
    versions = await superseding_versions(store, caller.tenant, unversioned) if unversioned else {}
    events = [
        DocumentEvent(tenant=caller.tenant, **(d.model_dump(exclude_none=True) | _version_of(d, versions)))
        for d in documents
    ]
    await publisher.publish(events, lane=Lane.LIVE)  # an API caller edits: never behind a bulk load
    return _accepted(events)


def _version_of(document: DocumentIn, versions: dict[str, int]) -> dict[str, int]:
    return {} if document.version is not None else {"version": _bounded(document.doc_id, versions)}


def _bounded(doc_id: str, versions: dict[str, int]) -> int:
    version = versions[doc_id]
    if problem := version_problem(version):
        raise Conflict(
            f"document {doc_id!r} is indexed with version {version}, beyond the bounds of today's versions "
            f"({problem}); an earlier build accepted it. A reindex (`ragbus reindex`) drops it: today's extractor "
            "dead-letters an event with such a version"
        )
    return version


@router.delete("/documents/{doc_id:path}", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def delete_document(
    doc_id: Annotated[
        str, Path(min_length=1, max_length=512, pattern=DOC_ID_PATTERN, description="Id of the document to delete.")
    ],
    caller: Writer,
    store: StoreDep,
    publisher: PublisherDep,
) -> DocumentsAccepted:
    """Delete a document of the caller's tenant, whatever version is indexed (an unknown id is accepted and does
    nothing)."""
    _valid_id(doc_id)
    versions = await superseding_versions(store, caller.tenant, [doc_id])
    events = delete_events(caller.tenant, [doc_id], {doc_id: _bounded(doc_id, versions)})
    await publisher.publish(events, lane=Lane.LIVE)  # an API caller edits: never behind a bulk load
    return _accepted(events)


@router.get("/documents/{doc_id:path}", responses=error_responses(*AUTHENTICATED, 404))
async def get_document(
    doc_id: Annotated[
        str, Path(min_length=1, max_length=512, pattern=DOC_ID_PATTERN, description="Id of the document.")
    ],
    caller: Reader,
    settings: SettingsDep,
    store: StoreDep,
) -> DocumentStatusOut:
    """Indexed version, chunk count, versions in flight (by stage) and the last dead letter of a document."""
    _valid_id(doc_id)
    status = await document_status(settings, store, caller.tenant, doc_id)
    if not status.known:
        raise NotFound(f"no document {doc_id!r} in this tenant (indexed, in flight or dead-lettered)")
    return DocumentStatusOut.of(status)
