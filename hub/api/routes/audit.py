"""`/api/v1/audit`: who changed what, when, from where, before and after; and the enrollment audit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from hub.api.auth import require
from hub.api.deps import Ctx
from hub.auth.audit import MAX_LIMIT

router = APIRouter(prefix="/api/v1", dependencies=[require("audit:read")], tags=["audit"])


@router.get("/audit")
async def list_audit(
    ctx: Ctx,
    source: Literal["api", "enrollment"] = "api",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Newest first. `source=api`: changes made through the API and CLI (page back with `before`, the
    last id seen; `actor` exact, `action` a prefix such as `user.` or `POST`). `source=enrollment`:
    agent enrollments and renewals, refused ones too (`limit` only)."""
    if source == "enrollment":
        rows = await ctx.queries.run("audit", ctx.auth.enrollment.audit_log, limit)
        return {
            "entries": [
                {
                    "at_ms": e.at_ms,
                    "actor": f"agent:{e.agent}",
                    "action": f"enroll.{e.action}",
                    "target": f"token:{e.token_id}",
                    "peer": e.peer,
                    "outcome": e.outcome,
                }
                for e in reversed(rows)
            ]
        }
    entries = await ctx.queries.run("audit", ctx.auth.audit.entries, limit, before, actor, action)
    return {"entries": [e.as_json() for e in entries]}
