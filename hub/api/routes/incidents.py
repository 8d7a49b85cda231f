"""`/api/v1/incidents`: alerts grouped per site and device, with a timeline, assignee and notes.

Reads come from the shared database in every role; actions run on the engine in role `all` and are sent
to the engine's leader in an `api` process (`hub.alerts.commands`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.alerts.incidents import MAX_NOTE_LEN, Incident, IncidentStatus, TimelineEntry
from hub.alerts.service import NotFound
from hub.api.auth import Caller, require
from hub.api.deps import Ctx, alerts_of, repo_of, run_command
from hub.api.routes.alerts import alert_json
from hub.enrich.llm import repository as enrichments

router = APIRouter(prefix="/api/v1", tags=["incidents"])

_ID = Path(max_length=24, pattern=r"^[0-9a-f]{1,24}$")


def incident_json(i: Incident) -> dict[str, Any]:
    return {
        "id": i.id,
        "title": i.title,
        "status": i.status.value,
        "labels": dict(i.labels),
        "opened_ms": i.opened_ms,
        "updated_ms": i.updated_ms,
        "resolved_ms": i.resolved_ms,
        "assignee": i.assignee,
        "acknowledged_by": i.ack_by,
        "acknowledged_ms": i.ack_ms,
        "alert_ids": sorted(i.alert_ids),
        "open_alerts": sorted(i.open_alerts),
    }


def entry_json(e: TimelineEntry) -> dict[str, Any]:
    return {"ts_ms": e.ts_ms, "kind": e.kind, "text": e.text, "actor": e.actor, "alert_id": e.alert_id}


@router.get("/incidents", dependencies=[require("incidents:read")])
async def list_incidents(
    ctx: Ctx,
    status: Annotated[list[IncidentStatus] | None, Query(max_length=3)] = None,
    before: Annotated[str | None, Query(max_length=24, pattern=r"^[0-9a-f]{1,24}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Incidents newest first; `status` filters (repeatable), `before=<id>` pages back."""
    repo = repo_of(ctx)
    found = await ctx.queries.run("incidents", repo.incidents, [s.value for s in status or []], before, limit)
    return {
        "incidents": [incident_json(i) for i in found],
        "next": found[-1].id if len(found) == limit else None,
    }


class ProvenanceOut(BaseModel):
    """Where an explanation came from: the model, the hash of the (redacted) prompt it answered, when,
    how long it took and what it cost."""

    model: str
    prompt_sha256: str
    created_ms: int
    latency_ms: int
    tokens: int


class EnrichmentOut(BaseModel):
    """The LLM's explanation of an incident; `fallback` marks the deterministic summary stored when the
    model's answers were not valid. Model text: render it as text, never as HTML."""

    summary: str
    probable_cause: str
    suggested_actions: list[str]
    confidence: float
    fallback: bool
    provenance: ProvenanceOut


class IncidentDetailOut(BaseModel):
    """An incident with its alerts, timeline and (null until it arrives) its explanation."""

    model_config = ConfigDict(extra="allow")
    enrichment: EnrichmentOut | None


@router.get(
    "/incidents/{incident_id}", dependencies=[require("incidents:read")], response_model=IncidentDetailOut
)
async def get_incident(ctx: Ctx, incident_id: Annotated[str, _ID]) -> dict[str, Any]:
    """One incident with its alerts, its timeline (alerts joined, state changes, notes) and its LLM
    explanation (`enrichment`, null until one arrives or with enrichment off)."""
    repo = repo_of(ctx)
    found = await ctx.queries.run("incidents", repo.incident, incident_id)
    if found is None:
        raise HTTPException(404, "no such incident")
    inc, timeline = found
    alerts = await ctx.queries.run("incidents", repo.alerts_by_ids, sorted(inc.alert_ids))
    stored = await ctx.queries.run("incidents", enrichments.load, repo.engine, incident_id)
    return {
        **incident_json(inc),
        "alerts": [alert_json(a) for a in alerts],
        "timeline": [entry_json(e) for e in timeline],
        "enrichment": None if stored is None else stored.to_json(),
    }


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_NOTE_LEN)


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(default=None, max_length=255)


Act = Callable[[Any, str], Callable[[Incident, int], list[TimelineEntry]]]


async def _act(
    ctx: Ctx,
    caller: Caller,
    incident_id: str,
    action: str,
    payload: dict[str, Any],
    act: Act,
    response: Response,
) -> dict[str, Any]:
    """`act(incidents, actor)` builds the engine's change (role `all`); an `api` process sends `action`
    with `payload` to the engine's leader and answers with the incident as the database then has it
    (202 with the command id if it has not run within a few seconds)."""
    if ctx.alerts is None:
        done = await run_command(ctx, action, incident_id, caller.name, json.dumps(payload))
        if isinstance(done, str):
            response.status_code = 202
            return {"command": done, "status": "pending"}
        found = await ctx.queries.run("incidents", repo_of(ctx).incident, incident_id)
        if found is None:
            raise HTTPException(404, "no such incident")
        return incident_json(found[0])
    service = alerts_of(ctx)
    try:
        inc = await service.incident_action(incident_id, act(service.core.incidents, caller.name))
    except NotFound:
        raise HTTPException(404, "no such incident") from None
    return incident_json(inc)


@router.post("/incidents/{incident_id}/notes", dependencies=[require("incidents:write")])
async def add_note(
    ctx: Ctx, caller: Caller, incident_id: Annotated[str, _ID], body: NoteIn, response: Response
) -> dict[str, Any]:
    return await _act(
        ctx,
        caller,
        incident_id,
        "incident_note",
        {"text": body.text},
        lambda incidents, actor: lambda inc, now: incidents.note(inc.id, body.text, actor, now),
        response,
    )


@router.post("/incidents/{incident_id}/assign", dependencies=[require("incidents:write")])
async def assign(
    ctx: Ctx, caller: Caller, incident_id: Annotated[str, _ID], body: AssignIn, response: Response
) -> dict[str, Any]:
    return await _act(
        ctx,
        caller,
        incident_id,
        "incident_assign",
        {"assignee": body.assignee},
        lambda incidents, actor: lambda inc, now: incidents.assign(inc.id, body.assignee, actor, now),
        response,
    )


@router.post("/incidents/{incident_id}/ack", dependencies=[require("incidents:write")])
async def acknowledge(
    ctx: Ctx, caller: Caller, incident_id: Annotated[str, _ID], response: Response
) -> dict[str, Any]:
    return await _act(
        ctx,
        caller,
        incident_id,
        "incident_ack",
        {},
        lambda incidents, actor: lambda inc, now: incidents.acknowledge(inc.id, actor, now),
        response,
    )


@router.post("/incidents/{incident_id}/unack", dependencies=[require("incidents:write")])
async def unacknowledge(
    ctx: Ctx, caller: Caller, incident_id: Annotated[str, _ID], response: Response
) -> dict[str, Any]:
    return await _act(
        ctx,
        caller,
        incident_id,
        "incident_unack",
        {},
        lambda incidents, actor: lambda inc, now: incidents.unacknowledge(inc.id, actor, now),
        response,
    )
