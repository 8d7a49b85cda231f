"""`/api/v1/logs` and `/api/v1/logs/templates`: stored log lines by time, source, template and text.

Every parameter is bounded and a bad one is a counted 400 (`outpost_hub_api_rejected_total`), a text
query the backend cannot parse included. Pages come newest first; `next_cursor` (opaque) asks for the
page after, and stays exact while lines are being stored. Reads run on the API's query pool.
`/api/v1/logs/search` is left for semantic search.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from hub.api.auth import require
from hub.api.deps import Ctx, HubContext
from hub.api.routes.params import parse_int, time_range
from hub.enrich.logs.store import Cursor, LogLine, LogQuery, LogStore, TemplateStats
from hub.store.base import MAX_NAME_LEN

router = APIRouter(prefix="/api/v1/logs", dependencies=[require("logs:read")], tags=["logs"])

MAX_LIMIT = 1000
MAX_TEMPLATES = 1000
MAX_QUERY_CHARS = 256
MAX_CURSOR_CHARS = 64
# syslog severities, RFC 5424 section 6.2.1: the number or its keyword.
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class LogPageOut(BaseModel):
    logs: list[LogLine]
    # Pass as `cursor` (with the same filters) for the next page; null on the last one.
    next_cursor: str | None


class TemplatesOut(BaseModel):
    templates: list[TemplateStats]


def _text(name: str, value: str | None, most: int) -> str | None:
    """A free-text parameter: at most `most` characters, no control characters (PostgreSQL refuses NUL)."""
    if value is None:
        return None
    if not value or len(value) > most:
        raise ValueError(f"{name} must be 1 to {most} characters")
    if _CONTROL.search(value):
        raise ValueError(f"{name} must not contain control characters")
    return value


def parse_severity(text: str | None) -> int | None:
    """`severity` as the worst-to-keep level: 0..7 or a syslog keyword (err, warning, ...)."""
    if text is None:
        return None
    t = text.strip().lower()
    if t in SEVERITIES:
        return SEVERITIES.index(t)
    return parse_int("severity", text, 0, 0, 7)


def _logs_of(ctx: HubContext) -> LogStore:
    if ctx.logs is None:
        raise HTTPException(503, "this hub process serves no log store")
    return ctx.logs


@router.get("", response_model=LogPageOut)
async def list_logs(
    ctx: Ctx,
    q: str | None = None,
    start: Annotated[str, Query(alias="from")] = "-1h",
    end: Annotated[str, Query(alias="to")] = "now",
    agent: str | None = None,
    device: str | None = None,
    app: str | None = None,
    severity: str | None = None,
    template: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
) -> LogPageOut:
    """Lines with ts in [from, to], newest first, matching every filter given.

    `q` is a full-text query (SQLite: FTS5 syntax, e.g. `link AND down`, `"link down"`, `eth*`;
    PostgreSQL: web-search syntax, e.g. `"link down" -flap`); `severity` keeps that level and worse.
    """
    store = _logs_of(ctx)
    try:
        start_ms, end_ms = time_range(ctx, start, end)
        query = LogQuery(
            start_ms,
            end_ms,
            parse_int("limit", limit, 100, 1, MAX_LIMIT),
            text=_text("q", q, MAX_QUERY_CHARS),
            agent=_text("agent", agent, MAX_NAME_LEN),
            device=_text("device", device, MAX_NAME_LEN),
            app=_text("app", app, MAX_NAME_LEN),
            max_severity=parse_severity(severity),
            template_id=_text("template", template, MAX_NAME_LEN),
            after=Cursor.decode(c) if (c := _text("cursor", cursor, MAX_CURSOR_CHARS)) else None,
        )
        page = await ctx.queries.run("logs", store.search, query)
    except ValueError as exc:  # LogQueryError too: a query FTS5 cannot parse
        raise ctx.queries.bad_request("logs", str(exc)) from None
    return LogPageOut(
        logs=page.lines,
        next_cursor=page.next.encode() if page.next else None,
    )


@router.get("/templates", response_model=TemplatesOut)
async def list_templates(ctx: Ctx, limit: str | None = None) -> TemplatesOut:
    """The most frequent log templates with their line counts, most lines first."""
    store = _logs_of(ctx)
    try:
        most = parse_int("limit", limit, 50, 1, MAX_TEMPLATES)
    except ValueError as exc:
        raise ctx.queries.bad_request("logs_templates", str(exc)) from None
    rows = await ctx.queries.run("logs_templates", store.templates, most)
    return TemplatesOut(templates=rows)
