"""`/api/v1/logs/search` and `/api/v1/incidents/{id}/similar`: semantic search (`hub.enrich.logs.semantic`).

Both run on the API's query pool. `q` is free text (1..512 characters, no control characters), `limit`
1..50; a bad one is a counted 400. A process whose search is off (`logs.semantic.enabled: false`, chromadb
not installed, an index that could not be opened) answers a counted 503 saying which.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from hub.api.auth import require
from hub.api.deps import Ctx, HubContext
from hub.api.routes.incidents import _ID
from hub.api.routes.logs import _text
from hub.api.routes.params import parse_int
from hub.enrich.logs.semantic import IncidentHit, SemanticSearch, TemplateHit

router = APIRouter(prefix="/api/v1", tags=["search"])

MAX_QUERY_CHARS = 512
MAX_LIMIT = 50


class TemplateSearchOut(BaseModel):
    hits: list[TemplateHit]


class SimilarIncidentsOut(BaseModel):
    hits: list[IncidentHit]


def _search_of(ctx: HubContext, endpoint: str) -> SemanticSearch:
    search = ctx.semantic
    why = "this hub process serves no semantic search" if search is None else search.unavailable
    if search is None or search.index is None:
        ctx.queries.rejected.labels(endpoint, "unavailable").inc()
        raise HTTPException(503, why or "semantic search is not running")
    return search


@router.get("/logs/search", response_model=TemplateSearchOut, dependencies=[require("logs:read")])
async def search_templates(ctx: Ctx, q: str | None = None, limit: str | None = None) -> TemplateSearchOut:
    """Log templates nearest in meaning to `q` ("disk full" finds "No space left on device"), best first."""
    try:
        text = _text("q", q, MAX_QUERY_CHARS)
        if text is None or not text.strip():
            raise ValueError(f"q is required: 1 to {MAX_QUERY_CHARS} characters")
        k = parse_int("limit", limit, 10, 1, MAX_LIMIT)
    except ValueError as exc:
        raise ctx.queries.bad_request("logs_search", str(exc)) from None
    search = _search_of(ctx, "logs_search")
    hits = await ctx.queries.run("logs_search", search.search, text, k)
    return TemplateSearchOut(hits=hits)


@router.get(
    "/incidents/{incident_id}/similar",
    response_model=SimilarIncidentsOut,
    dependencies=[require("incidents:read")],
)
async def similar_incidents(
    ctx: Ctx, incident_id: Annotated[str, _ID], limit: str | None = None
) -> SimilarIncidentsOut:
    """Past incidents most like this one (its title, labels, alert names and summaries), best first."""
    try:
        k = parse_int("limit", limit, 5, 1, MAX_LIMIT)
    except ValueError as exc:
        raise ctx.queries.bad_request("incidents_similar", str(exc)) from None
    search = _search_of(ctx, "incidents_similar")
    hits = await ctx.queries.run("incidents_similar", search.similar, incident_id, k)
    if hits is None:
        raise HTTPException(404, "no such incident")
    return SimilarIncidentsOut(hits=hits)
