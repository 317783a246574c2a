"""POST /v1/query."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.deps import StateDep
from query_api.models import ErrorResponse, QueryRequest, QueryResponse

router = APIRouter(prefix="/v1", tags=["query"])


@router.post(
    "/query",
    response_model=QueryResponse,
    responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
async def query(body: QueryRequest, state: StateDep) -> QueryResponse:
    """Answer a question from the indexed documents, with citations."""
    api = state.settings.api
    top_k = min(body.top_k or api.default_top_k, api.max_top_k)
    return await state.service.answer(body.query, top_k)
