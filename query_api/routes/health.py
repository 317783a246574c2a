"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from query_api.deps import RedisDep, SettingsDep, StoreDep
from query_api.readiness import check_readiness

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    """The process answers."""

    status: Literal["ok"]


class ReadinessReport(BaseModel):
    """Each dependency's state, named but never described: why one failed is only in the API's log."""

    ready: bool
    checks: dict[str, Literal["ok", "failed", "loading"]] = Field(
        description="kafka, milvus, redis: ok or failed; model: ok or loading.",
        examples=[{"kafka": "ok", "milvus": "failed", "model": "ok", "redis": "ok"}],
    )


@router.get("/healthz")
async def healthz() -> Liveness:
    """The process is up."""
    return Liveness(status="ok")


@router.get(
    "/readyz",
    response_model=ReadinessReport,
    responses={503: {"model": ReadinessReport, "description": "A dependency failed (named in `checks`)."}},
)
async def readyz(settings: SettingsDep, store: StoreDep, redis: RedisDep) -> JSONResponse:
    """200 only when Kafka, Milvus, Redis and the model are all usable."""
    readiness = await check_readiness(settings, store, redis, model_loaded=True)
    report = ReadinessReport(ready=readiness.ready, checks=readiness.checks)
    return JSONResponse(report.model_dump(), status_code=200 if readiness.ready else 503)
