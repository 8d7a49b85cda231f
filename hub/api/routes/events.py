"""`/api/v1/events`: traps, SEL entries and anomaly onsets/ends, newest first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.api.auth import require
from hub.api.deps import Ctx
from hub.api.routes.params import parse_int, time_range
from hub.store.base import MAX_NAME_LEN

router = APIRouter(prefix="/api/v1", dependencies=[require("events:read")], tags=["events"])

MAX_EVENTS_LIMIT = 10_000


@router.get("/events")
async def list_events(
    ctx: Ctx,
    start: str = "-1h",
    end: str = "now",
    kind: str | None = None,
    limit: str | None = None,
) -> dict[str, Any]:
    """Events (traps, SEL entries, anomaly onsets) in [start, end], newest first; `kind` filters by prefix."""
    try:
        start_ms, end_ms = time_range(ctx, start, end)
        most = parse_int("limit", limit, 500, 1, MAX_EVENTS_LIMIT)
        if kind is not None and len(kind) > MAX_NAME_LEN:
            raise ValueError(f"kind longer than {MAX_NAME_LEN} characters")
    except ValueError as exc:
        raise ctx.queries.bad_request("events", str(exc)) from None
    rows = await ctx.queries.run("events", ctx.store.events, start_ms, end_ms, most, kind)
    return {
        "events": [
            {
                "agent": agent,
                "ts_ms": e.ts_ms,
                "kind": e.kind,
                "severity": e.severity.name.lower(),
                "source": e.source,
                "message": e.message,
                "attributes": dict(e.attributes),
            }
            for agent, e in rows
        ]
    }
