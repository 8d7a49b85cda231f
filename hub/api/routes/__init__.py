"""The v1 REST API, one module per resource; `ROUTERS` is what the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.routes import agents, alerts, events, incidents, series, windows

ROUTERS: tuple[APIRouter, ...] = (
    agents.router,
    series.router,
    events.router,
    alerts.router,
    windows.router,
    incidents.router,
)
