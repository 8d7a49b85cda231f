"""The v1 REST API, one module per resource; `ROUTERS` is what the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.routes import (
    agents,
    alerts,
    audit,
    auth,
    confirm,
    events,
    forecast,
    generic_webhook,
    incidents,
    keys,
    logs,
    semantic,
    series,
    users,
    webhook_sources,
    webhooks,
    windows,
    write,
    ws,
)

ROUTERS: tuple[APIRouter, ...] = (
    agents.router,
    series.router,
    forecast.router,
    events.router,
    logs.router,
    semantic.router,
    alerts.router,
    confirm.router,
    windows.router,
    incidents.router,
    auth.router,
    users.router,
    keys.router,
    audit.router,
    ws.router,
    write.router,
    webhooks.router,
    webhook_sources.router,
    generic_webhook.router,
)
