"""`/api/v1/agents`: every agent that ever delivered, from the fleet's bookkeeping."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from hub.api.auth import require
from hub.api.deps import Ctx

router = APIRouter(prefix="/api/v1", dependencies=[require("agents:read")], tags=["agents"])


@router.get("/agents")
async def list_agents(ctx: Ctx) -> dict[str, Any]:
    """Every agent that ever delivered, with last-seen time, points received and sequence gaps."""
    agents = await asyncio.to_thread(ctx.fleet.agents)
    return {
        "agents": [
            {
                "id": a.id,
                "first_seen_ms": a.first_seen_ms,
                "last_seen_ms": a.last_seen_ms,
                "points_received": a.points_received,
                "batches_received": a.batches_received,
                "duplicates": a.duplicates,
                "gaps": a.gaps,
            }
            for a in agents
        ]
    }
