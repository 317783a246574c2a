"""The query page at `/`: plain HTML, JS and CSS from query_api/static (no build step, no credential needed)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
router = APIRouter(tags=["web"], include_in_schema=False)


@router.get("/")
async def query_page() -> FileResponse:
    """The page that asks POST /v1/query (streamed) and shows the answer with its citations."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


def install_web_page(app: FastAPI) -> None:
    """Serve the page at `/` and its scripts and styles under `/static`."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
