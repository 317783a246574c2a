"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from query_api.deps import RedisDep, SettingsDep, StoreDep
from query_api.readiness import check_readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(settings: SettingsDep, store: StoreDep, redis: RedisDep) -> JSONResponse:
    """200 only when Kafka, Milvus, Redis and the model are all usable."""
    readiness = await check_readiness(settings, store, redis, model_loaded=True)
    return JSONResponse(
        {"ready": readiness.ready, "checks": readiness.checks}, status_code=200 if readiness.ready else 503
    )
