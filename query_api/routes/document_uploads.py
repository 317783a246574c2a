"""POST /v1/documents with a multipart file upload: the file's original is stored, then its event published.

The JSON route of the same path serves every other content type: MultipartRoute matches only multipart bodies,
so the router falls through to it. Uploads count against RAGBUS_API_MAX_BODY_BYTES like any body.

OpenAPI has one operation per path and method, and FastAPI writes one per route (a second route of the same path and
method would replace the first's). So this route stays out of the document itself, and UPLOAD_FORM documents its
form on the JSON route's operation: a second content type of the same request body, with the same error responses.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.routing import Match
from starlette.types import Scope

from query_api.deps import PublisherDep, Writer
from query_api.document_requests import DocumentsAccepted
from query_api.errors import InvalidRequest
from schemas.documents import DocumentEvent, original_ref
from schemas.fields import DocId
from schemas.media_types import INLINE_MEDIA_TYPES, media_type_for
from schemas.topics import Lane


class MultipartRoute(APIRoute):
    """A route that only matches requests whose body is multipart/form-data."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """No match for any other content type (the next route of the path takes those)."""
        match, child = super().matches(scope)
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        if match is not Match.NONE and not content_type.startswith(b"multipart/form-data"):
            return Match.NONE, {}
        return match, child


_FILE = "A .pdf, .html, .docx, .pptx, .md or .txt file (its name says which)."
_DOC_ID = "Id of the document; default: the file name."
_TITLE = "Title; default: the one the file names."
# The form of upload_document, for the `requestBody.content` of POST /v1/documents (documents.py, openapi_extra); its
# fields take what DocumentEvent takes (a title of one line, up to 1000 characters).
UPLOAD_FORM: dict[str, Any] = {
    "multipart/form-data": {
        "schema": {
            "title": "DocumentUpload",
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "contentMediaType": "application/octet-stream", "description": _FILE},
                "doc_id": {**TypeAdapter(DocId).json_schema(), "description": _DOC_ID},
                "title": {"type": "string", "maxLength": 1000, "default": "", "description": _TITLE},
            },
        }
    }
}

router = APIRouter(prefix="/v1", tags=["documents"], route_class=MultipartRoute)


@router.post("/documents", status_code=status.HTTP_202_ACCEPTED, include_in_schema=False)
async def upload_document(
    file: Annotated[UploadFile, File(description=_FILE)],
    caller: Writer,
    publisher: PublisherDep,
    doc_id: Annotated[str | None, Form(description=_DOC_ID)] = None,
    title: Annotated[str, Form(description=_TITLE)] = "",
) -> DocumentsAccepted:
    """Create or replace one document of the caller's tenant from an uploaded file."""
    filename = file.filename or ""
    media_type = media_type_for(filename)
    if media_type is None:
        raise InvalidRequest(f"file {filename!r}: unsupported type (send .pdf .html .docx .pptx .md or .txt)")
    data = await file.read()
    fields = {"tenant": caller.tenant, "doc_id": doc_id or filename, "title": title, "source": filename}
    try:
        if media_type in INLINE_MEDIA_TYPES.values():
            event = DocumentEvent(**fields, media_type=media_type, text=data.decode("utf-8"))
        else:
            event = DocumentEvent(**fields, media_type=media_type, original=original_ref(data))
    except (ValidationError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"file {filename!r}: {exc}") from None
    originals = {event.original.sha256: data} if event.original else None
    await publisher.publish([event], originals=originals, lane=Lane.LIVE)
    return DocumentsAccepted(event_ids=[event.event_id], doc_ids=[event.doc_id], versions=[event.version])
