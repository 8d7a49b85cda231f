"""`/api/v1/silences` and `/api/v1/maintenance`: label matchers plus a time span that suppress alerts.

A silence is one-off (`startsAt`..`endsAt`, Alertmanager's shape); a maintenance window may recur by an
RFC 5545 RRULE (`FREQ=WEEKLY;BYDAY=SA;BYHOUR=2`) in a time zone, each occurrence lasting `duration`.
Deleting one expires it at once; alerts it suppressed notify if they are still firing.

In an `api` process the window is written to the shared database here and the alert engine's leader
is told to reload them (an `AlertCommand` it runs within a second or two); role `all` hands it to its
own engine, which writes and applies it at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from hub.alerts.engine import new_id
from hub.alerts.service import NotFound
from hub.alerts.windows import Window, WindowError, WindowKind
from hub.api.auth import Caller, require
from hub.api.deps import Ctx, HubContext, commands_of, repo_of
from hub.api.timeparse import parse_duration_ms
from hub.bus.errors import BusError
from hub.matchers import MAX_MATCHERS, parse_matchers

router = APIRouter(prefix="/api/v1", tags=["silences"])

_ID = Path(max_length=24, pattern=r"^[0-9a-f]{1,24}$")


class WindowIn(BaseModel):
    """A silence or maintenance window to create."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    matchers: list[Annotated[str, Field(max_length=1400)]] = Field(min_length=1, max_length=MAX_MATCHERS)
    starts_at: dt.datetime | None = Field(default=None, alias="startsAt")
    ends_at: dt.datetime | None = Field(default=None, alias="endsAt")
    comment: str = Field(default="", max_length=2000)
    # Maintenance only: recurrence, the length of each occurrence (e.g. "2h") and the rule's time zone.
    rrule: str | None = Field(default=None, max_length=256)
    duration: str | None = Field(default=None, max_length=32)
    timezone: str = Field(default="UTC", max_length=64)


def window_json(w: Window, now_ms: int) -> dict[str, Any]:
    return {
        "id": w.id,
        "kind": w.kind.value,
        "matchers": [str(m) for m in w.matchers],
        "starts_ms": w.starts_ms,
        "ends_ms": w.ends_ms,
        "rrule": w.rrule,
        "duration_ms": w.duration_ms,
        "timezone": w.timezone,
        "comment": w.comment,
        "created_by": w.created_by,
        "created_ms": w.created_ms,
        "active": w.active_at(now_ms),
        "next_change_ms": w.next_boundary(now_ms),
    }


def _ms(t: dt.datetime) -> int:
    return int((t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp() * 1000)


def _build(kind: WindowKind, body: WindowIn, actor: str, now_ms: int) -> Window:
    if kind is WindowKind.SILENCE and (body.rrule or body.duration):
        raise ValueError("a silence does not recur: use /api/v1/maintenance for rrule and duration")
    try:
        duration = parse_duration_ms(body.duration) if body.duration else None
        return Window(
            id=new_id(now_ms),
            kind=kind,
            matchers=parse_matchers(body.matchers),
            starts_ms=_ms(body.starts_at) if body.starts_at else now_ms,
            ends_ms=_ms(body.ends_at) if body.ends_at else None,
            created_by=actor,
            created_ms=now_ms,
            comment=body.comment,
            rrule=body.rrule,
            duration_ms=duration,
            timezone=body.timezone,
        )
    except WindowError as exc:
        raise ValueError(str(exc)) from None


async def _create(ctx: Ctx, caller: Caller, kind: WindowKind, body: WindowIn) -> dict[str, Any]:
    now = ctx.clock.now_ms()
    try:
        window = _build(kind, body, caller.name, now)
    except ValueError as exc:
        raise ctx.queries.bad_request(kind.value, str(exc)) from None
    if ctx.alerts is not None:
        await ctx.alerts.add_window(window)
    else:
        await asyncio.to_thread(repo_of(ctx).add_window, window)
        await _tell_engine(ctx, caller.name)
    return window_json(window, now)


async def _tell_engine(ctx: HubContext, actor: str) -> None:
    """Has the engine's leader reload the windows; the window is saved whatever the bus says, and the
    leader reloads every window when it next starts."""
    try:
        await commands_of(ctx).send("windows", "", actor)
    except BusError as exc:
        detail = f"saved, but the alert engine was not told (it applies it when it next starts): {exc}"
        raise HTTPException(503, detail) from None


async def _list(ctx: Ctx, kind: WindowKind, expired: bool, limit: int) -> dict[str, Any]:
    now = ctx.clock.now_ms()
    repo = repo_of(ctx)
    found = await ctx.queries.run(kind.value, repo.windows, kind, expired, now, limit)
    key = "silences" if kind is WindowKind.SILENCE else "windows"
    return {key: [window_json(w, now) for w in found]}


async def _delete(ctx: Ctx, caller: Caller, kind: WindowKind, window_id: str) -> dict[str, str]:
    if ctx.alerts is None:
        deleted = await asyncio.to_thread(repo_of(ctx).delete_window, window_id, kind, ctx.clock.now_ms())
        if not deleted:
            raise HTTPException(404, f"no such {kind.value}")
        await _tell_engine(ctx, caller.name)
        return {"id": window_id, "status": "expired"}
    try:
        await ctx.alerts.delete_window(window_id, kind)
    except NotFound:
        raise HTTPException(404, f"no such {kind.value}") from None
    return {"id": window_id, "status": "expired"}


@router.get("/silences", dependencies=[require("silences:read")])
async def list_silences(
    ctx: Ctx, expired: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Silences, newest first; `expired=true` includes ones that ended."""
    return await _list(ctx, WindowKind.SILENCE, expired, limit)


@router.post("/silences", status_code=201, dependencies=[require("silences:write")])
async def create_silence(ctx: Ctx, caller: Caller, body: WindowIn) -> dict[str, Any]:
    """Silences alerts matching every matcher from `startsAt` (default now) to `endsAt` (required)."""
    return await _create(ctx, caller, WindowKind.SILENCE, body)


@router.delete("/silences/{window_id}", dependencies=[require("silences:write")])
async def delete_silence(ctx: Ctx, caller: Caller, window_id: Annotated[str, _ID]) -> dict[str, str]:
    return await _delete(ctx, caller, WindowKind.SILENCE, window_id)


@router.get("/maintenance", dependencies=[require("maintenance:read")])
async def list_maintenance(
    ctx: Ctx, expired: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Maintenance windows, newest first; each says whether it is active now and when it next changes."""
    return await _list(ctx, WindowKind.MAINTENANCE, expired, limit)


@router.post("/maintenance", status_code=201, dependencies=[require("maintenance:write")])
async def create_maintenance(ctx: Ctx, caller: Caller, body: WindowIn) -> dict[str, Any]:
    """One-off (`startsAt`..`endsAt`) or recurring (`rrule` + `duration`, until `endsAt` if given)."""
    return await _create(ctx, caller, WindowKind.MAINTENANCE, body)


@router.delete("/maintenance/{window_id}", dependencies=[require("maintenance:write")])
async def delete_maintenance(ctx: Ctx, caller: Caller, window_id: Annotated[str, _ID]) -> dict[str, str]:
    return await _delete(ctx, caller, WindowKind.MAINTENANCE, window_id)
