"""Builds the FastAPI application: health, metrics, the v1 REST API and the dashboard."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api import routes
from hub.api.deps import HubContext
from hub.dashboard import STATIC_DIR


def create_app(ctx: HubContext) -> FastAPI:
    """The app reads everything it needs from `ctx`; no globals, so tests can run several hubs."""
    app = FastAPI(title="Outpost hub", version="0.1.0")
    app.state.ctx = ctx

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        ctx.metrics.seq_gaps.set(await asyncio.to_thread(ctx.state.total_gaps))
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.include_router(routes.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
