"""POST /v1/query."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from query_api.deps import FeedbackDep, Reader, ServiceDep, SettingsDep
from query_api.error_responses import AUTHENTICATED, error_responses
from query_api.metadata_filter import metadata_filter
from query_api.models import QueryRequest, QueryResponse
from query_api.streaming import MEDIA_TYPE, encode_events
from query_api.validation import flag_prompt_injection
from ragbus.logging_setup import correlation_id

router = APIRouter(prefix="/v1", tags=["query"])


@router.post(
    "/query",
    response_model=QueryResponse,
    responses={
        200: {"content": {MEDIA_TYPE: {}}, "description": "With stream=true: Server-Sent Events."},
        **error_responses(*AUTHENTICATED),
    },
)
async def query(
    body: QueryRequest, caller: Reader, settings: SettingsDep, service: ServiceDep, feedback: FeedbackDep
) -> Response:
    """Answer a question from the caller's tenant's documents, with citations (or only retrieve, with retrieve_only)."""
    api = settings.api
    top_k = min(body.top_k or api.default_top_k, api.max_top_k)
    flag_prompt_injection(body.query, caller.tenant)
    where = metadata_filter(body.filters)
    if body.stream:
        events = await service.open_stream(body.query, top_k, caller.tenant, where)
        return StreamingResponse(encode_events(events), media_type=MEDIA_TYPE)
    response = await service.answer(body.query, top_k, caller.tenant, where, compose=not body.retrieve_only)
    if request_id := correlation_id.get():
        await feedback.remember(request_id, caller.tenant, [c.doc_id for c in response.citations])
    # Serialized here: given the model, FastAPI would validate it against response_model once more first.
    return Response(response.model_dump_json(), media_type="application/json")
