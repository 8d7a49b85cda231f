"""Builds the FastAPI application: health, metrics, the v1 REST API, its docs and the dashboard."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Response
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.api.audit_middleware import AuditMiddleware
from hub.api.deps import HubContext
from hub.api.docs import add_docs
from hub.api.metrics_middleware import ApiRequestMetrics, RequestMetricsMiddleware
from hub.api.routes import ROUTERS
from hub.dashboard import STATIC_DIR
from hub.telemetry import HubMetrics


def create_app(ctx: HubContext) -> FastAPI:
    """The app reads everything it needs from `ctx`; no globals, so tests can run several hubs.

    Call it once per `ctx.metrics` registry (the request series are registered on it).
    """
    # FastAPI's own docs pages load Swagger UI and ReDoc from a CDN and serve the schema without a
    # token: both are replaced by `add_docs`.
    app = FastAPI(title="Outpost hub", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    app.add_middleware(
        AuditMiddleware, audit=ctx.auth.audit, clock=ctx.clock, failures=ctx.auth.metrics.audit_failures
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=ApiRequestMetrics(ctx.metrics.registry))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Documented as what it is (Prometheus text), not JSON: the contract fuzzing checks content types.
    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        ctx.metrics.seq_gaps.set(await asyncio.to_thread(ctx.fleet.total_gaps))
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    for router in ROUTERS:
        app.include_router(router)
    add_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def create_probe_app(metrics: HubMetrics) -> FastAPI:
    """What a `worker` process serves on `api.listen`: `/healthz` and `/metrics` (no API, no dashboard),
    so its ingest, bus and notify counters can be scraped and supervisors can probe it."""
    app = FastAPI(title="Outpost hub worker", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics_page() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
