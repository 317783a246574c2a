"""POST /v1/feedback: thumbs up or down on an answer, optionally naming the relevant documents."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.deps import FeedbackDep, Reader
from query_api.error_responses import AUTHENTICATED, error_responses
from query_api.feedback import FeedbackRequest, FeedbackTotals

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post(
    "/feedback",
    responses=error_responses(*AUTHENTICATED, 404, 409),
)
async def feedback(body: FeedbackRequest, caller: Reader, store: FeedbackDep) -> FeedbackTotals:
    """Record one vote per answered query of the caller's tenant; returns the running ratios."""
    return await store.record(caller.tenant, body)
