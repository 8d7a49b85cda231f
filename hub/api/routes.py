"""REST endpoints: agents, series and range queries (`/api/v1/...`)."""

from __future__ import annotations

import asyncio
import math
import re
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query

from hub.api.auth import require_token
from hub.api.deps import Ctx, HubContext
from hub.api.timeparse import parse_duration_ms, parse_time_ms
from hub.store.base import Agg, Matcher, MatchOp, RangeQuery
from shared.model import SeriesKey

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')
MAX_POINTS_DEFAULT = 11_000


def parse_matchers(raw: list[str] | None) -> tuple[Matcher, ...]:
    """Parses `name=value`, `name!=value`, `name=~regex`, `name!~regex` (quotes optional)."""
    out = []
    for text in raw or []:
        m = _MATCHER.match(text)
        if not m:
            raise HTTPException(
                400, f"bad matcher {text!r}: expected name=value, name!=value, name=~re or name!~re"
            )
        op = MatchOp(m.group(2))
        if op in (MatchOp.RE, MatchOp.NRE):
            try:
                re.compile(m.group(3))
            except re.error as exc:
                raise HTTPException(400, f"bad regex in matcher {text!r}: {exc}") from None
        out.append(Matcher(m.group(1), op, m.group(3)))
    return tuple(out)


def _time_range(ctx: HubContext, start: str, end: str) -> tuple[int, int]:
    """Resolves `start`/`end` parameters; answers 400 on unparsable or reversed ranges."""
    now = ctx.clock.now_ms()
    try:
        start_ms, end_ms = parse_time_ms(start, now), parse_time_ms(end, now)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if end_ms < start_ms:
        raise HTTPException(400, "end is before start")
    return start_ms, end_ms


def _points(ts: np.ndarray, values: np.ndarray) -> list[list[float | int | None]]:
    """[[ts, value], ...] with NaN/inf as null: JSON has no such numbers, and one must not fail a query."""
    vals: list[float | None] = values.tolist()
    if not bool(np.isfinite(values).all()):
        vals = [v if math.isfinite(v) else None for v in vals]  # type: ignore[arg-type]
    return [[t, v] for t, v in zip(ts.tolist(), vals, strict=True)]


def _key_json(key: SeriesKey) -> dict[str, Any]:
    return {"metric": key.metric, "labels": dict(key.labels)}


@router.get("/agents")
async def list_agents(ctx: Ctx) -> dict[str, Any]:
    """Every agent that ever delivered, with last-seen time, points received and sequence gaps."""
    agents = await asyncio.to_thread(ctx.state.agents)
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


@router.get("/series")
async def list_series(
    ctx: Ctx,
    metric: str | None = None,
    match: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    """Series keys, optionally filtered by metric and label matchers (`match=agent=sw1`, repeatable)."""
    matchers = parse_matchers(match)
    keys = await asyncio.to_thread(ctx.store.series, metric, matchers)
    return {"series": [_key_json(k) for k in keys[:limit]], "total": len(keys)}


@router.get("/query")
async def query(
    ctx: Ctx,
    metric: str,
    match: Annotated[list[str] | None, Query()] = None,
    start: str = "-1h",
    end: str = "now",
    step: str | None = None,
    agg: Agg = Agg.AVG,
    max_points: Annotated[int, Query(ge=1, le=1_000_000)] = MAX_POINTS_DEFAULT,
) -> dict[str, Any]:
    """Points of every matching series in [start, end], raw or aggregated per `step`.

    Ranges that would return more than `max_points` per series are downsampled server-side
    (the step is widened), so a year-long query never ships millions of points to a browser.
    """
    start_ms, end_ms = _time_range(ctx, start, end)
    try:
        step_ms = parse_duration_ms(step) if step else None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    if step_ms is not None and step_ms <= 0:
        raise HTTPException(400, "step must be positive")
    q = RangeQuery(metric, start_ms, end_ms, parse_matchers(match), step_ms, agg, max_points)
    results = await asyncio.to_thread(ctx.store.query, q)
    return {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "series": [
            {
                **_key_json(r.key),
                "points": _points(r.timestamps_ms, r.values),
            }
            for r in results
        ],
    }


@router.get("/events")
async def list_events(
    ctx: Ctx,
    start: str = "-1h",
    end: str = "now",
    kind: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    """Events (traps, SEL entries, anomaly onsets) in [start, end], newest first; `kind` filters by prefix."""
    start_ms, end_ms = _time_range(ctx, start, end)
    rows = await asyncio.to_thread(ctx.store.events, start_ms, end_ms, limit)
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
            if kind is None or e.kind.startswith(kind)
        ]
    }
