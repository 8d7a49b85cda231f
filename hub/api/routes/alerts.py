"""REST endpoints for alerts: list, get, acknowledge, un-acknowledge, resolve, and external alerts in.

External sources post alerts in Prometheus Alertmanager's v2 shape (a JSON array of `labels`,
`annotations`, `startsAt`, `endsAt`, `generatorURL`), so a tool that can push to Alertmanager can push
here; an `endsAt` in the past resolves. A `fingerprint` field, when given, is kept as is.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.alerts.model import SEVERITIES, Alert, AlertStatus, Signal, labels_of
from hub.alerts.service import NotFound
from hub.api.auth import Caller, require
from hub.api.deps import Ctx, commands_of, repo_of, run_command, submit_signals
from hub.matchers import parse_matchers

router = APIRouter(prefix="/api/v1", tags=["alerts"])
_ID = Path(max_length=24, pattern=r"^[0-9a-f]{1,24}$")

MAX_ALERTS_PER_POST = 1000
_LABEL = Field(max_length=64)


def alert_json(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "fingerprint": a.fingerprint,
        "status": a.status.value,
        "flapping": a.flapping,
        "severity": a.severity,
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "source": a.source,
        "count": a.count,
        "first_seen_ms": a.first_seen_ms,
        "last_seen_ms": a.last_seen_ms,
        "starts_ms": a.starts_ms,
        "ends_ms": a.ends_ms,
        "links": [{"kind": k, "ref": v} for k, v in a.links],
        "silenced_by": a.silenced_by,
        "acknowledged_by": a.ack_by,
        "acknowledged_ms": a.ack_ms,
        "resolved_by": a.resolved_by,
        "incident_id": a.incident_id,
        # Edge onsets judged by hub.confirm: confirmed / dismissed (kept, never paged) / unscored.
        "verdict": a.verdict,
        "verdict_features": [{"feature": k, "share": float(v)} for k, v in a.verdict_features],
    }


@router.get("/alerts", dependencies=[require("alerts:read")])
async def list_alerts(
    ctx: Ctx,
    status: Annotated[list[AlertStatus] | None, Query(max_length=4)] = None,
    severity: Annotated[list[str] | None, Query(max_length=3)] = None,
    match: Annotated[list[str] | None, Query(max_length=32)] = None,
    before: Annotated[str | None, Query(max_length=24, pattern=r"^[0-9a-f]{1,24}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Alerts newest first. Filters: `status` and `severity` (repeatable), label matchers `match`
    (`device="sw1"`, `alertname=~"Link.*"`), and `before=<id>` to page back (see `next`)."""
    repo = repo_of(ctx)
    for s in severity or []:
        if s not in SEVERITIES:
            raise HTTPException(400, f"severity must be one of {', '.join(SEVERITIES)}")
    try:
        matchers = parse_matchers(match)
    except ValueError as exc:
        raise ctx.queries.bad_request("alerts", str(exc)) from None
    found = await ctx.queries.run(
        "alerts",
        lambda: repo.alerts(
            status=[s.value for s in status or []],
            severity=severity or [],
            matchers=matchers,
            before_id=before,
            limit=limit,
        ),
    )
    return {
        "alerts": [alert_json(a) for a in found],
        "next": found[-1].id if len(found) == limit else None,
    }


@router.get("/alerts/{alert_id}", dependencies=[require("alerts:read")])
async def get_alert(ctx: Ctx, alert_id: Annotated[str, _ID]) -> dict[str, Any]:
    alert = await ctx.queries.run("alerts", repo_of(ctx).alert, alert_id)
    if alert is None:
        raise HTTPException(404, "no such alert")
    return alert_json(alert)


async def _act(ctx: Ctx, caller: Caller, alert_id: str, action: str, response: Response) -> dict[str, Any]:
    """Role `all` runs the action on its engine; an `api` process sends it to the engine's leader and
    answers with the alert as the database then has it, or 202 with the command id if not run within
    a few seconds."""
    if ctx.alerts is None:
        done = await run_command(ctx, action, alert_id, caller.name)
        if isinstance(done, str):
            response.status_code = 202
            return {"command": done, "status": "pending"}
        alert = await ctx.queries.run("alerts", repo_of(ctx).alert, alert_id)
        if alert is None:
            raise HTTPException(404, "no such open alert")
        return alert_json(alert)
    service = ctx.alerts
    fn = {"ack": service.acknowledge, "unack": service.unacknowledge, "resolve": service.resolve}[action]
    try:
        return alert_json(await fn(alert_id, caller.name))
    except NotFound:
        raise HTTPException(404, "no such open alert") from None


@router.post("/alerts/{alert_id}/ack", dependencies=[require("alerts:write")])
async def acknowledge(
    ctx: Ctx, caller: Caller, alert_id: Annotated[str, _ID], response: Response
) -> dict[str, Any]:
    """Acknowledges an open alert (who and when are recorded); it stops repeating, its resolve still
    notifies."""
    return await _act(ctx, caller, alert_id, "ack", response)


@router.post("/alerts/{alert_id}/unack", dependencies=[require("alerts:write")])
async def unacknowledge(
    ctx: Ctx, caller: Caller, alert_id: Annotated[str, _ID], response: Response
) -> dict[str, Any]:
    return await _act(ctx, caller, alert_id, "unack", response)


@router.post("/alerts/{alert_id}/resolve", dependencies=[require("alerts:write")])
async def resolve(
    ctx: Ctx, caller: Caller, alert_id: Annotated[str, _ID], response: Response
) -> dict[str, Any]:
    """Resolves an open alert by hand; a resolved notification goes to every receiver that was paged."""
    return await _act(ctx, caller, alert_id, "resolve", response)


class PostedAlert(BaseModel):
    """One alert in Alertmanager's v2 `postableAlert` shape, plus optional `fingerprint` and `severity`."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    labels: dict[Annotated[str, _LABEL], Annotated[str, Field(max_length=1024)]] = Field(max_length=64)
    annotations: dict[Annotated[str, _LABEL], Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=64
    )
    starts_at: dt.datetime | None = Field(default=None, alias="startsAt")
    ends_at: dt.datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=2048)
    fingerprint: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    severity: str | None = None


def _ms(t: dt.datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)


@router.post("/alerts", status_code=202, dependencies=[require("alerts:ingest")])
async def post_alerts(
    ctx: Ctx,
    caller: Caller,
    body: Annotated[list[PostedAlert], Body(max_length=MAX_ALERTS_PER_POST)],
) -> dict[str, Any]:
    """Alerts from an external source. Firing unless `endsAt` is in the past; `alertname` is required.

    `changed` is how many alerts changed; in an `api` process it is null if the engine's leader has not
    applied them within a few seconds (they are applied once it has, `commands` names them)."""
    now = ctx.clock.now_ms()
    resolve_timeout_s = (
        ctx.alerts.config.resolve_timeout_s if ctx.alerts is not None else commands_of(ctx).resolve_timeout_s
    )
    signals = []
    for i, p in enumerate(body):
        if not p.labels.get("alertname"):
            raise HTTPException(400, f"alert {i}: labels.alertname is required")
        severity = p.severity or p.labels.get("severity", "warning")
        if severity not in SEVERITIES:
            raise HTTPException(400, f"alert {i}: severity must be one of {', '.join(SEVERITIES)}")
        ends = _ms(p.ends_at) if p.ends_at is not None else None
        firing = ends is None or ends > now
        links = (("generator", p.generator_url),) if p.generator_url else ()
        signals.append(
            Signal(
                labels_of(p.labels),
                firing,
                (_ms(p.starts_at) if p.starts_at and firing else (ends if not firing else now)) or now,
                severity=severity,
                annotations=labels_of(p.annotations),
                source=f"api:{caller.name}",
                fingerprint=p.fingerprint,
                links=links,
                resolve_after_ms=int(resolve_timeout_s * 1000),
            )
        )
    changed, ids = await submit_signals(ctx, signals, caller.name)
    if ctx.alerts is None:
        return {"accepted": len(signals), "changed": changed, "commands": ids}
    return {"accepted": len(signals), "changed": changed}
