"""GET /v1/status: the pipeline as the caller's tenant sees it (counts, lag, dead letters, reindexes)."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.deps import Reader, SettingsDep
from query_api.error_responses import AUTHENTICATED, error_responses
from ragbus.status_report import StatusReport, tenant_status

router = APIRouter(prefix="/v1", tags=["status"])


@router.get("/status", responses=error_responses(*AUTHENTICATED))
async def status(caller: Reader, settings: SettingsDep) -> StatusReport:
    """Documents and chunks indexed for the caller's tenant, lag per stage and partition, its dead letters."""
    return await tenant_status(settings, caller.tenant)
