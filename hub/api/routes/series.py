"""`/api/v1/series` and `/api/v1/query`: series keys and range queries.

Every parameter is bounded and a bad one is a 400 saying which and why (counted in
`outpost_hub_api_rejected_total`): times in 1970 .. 2200, durations and steps within that range,
`max_points`, `limit`, the number and length of matchers, the metric name. Store reads run on the
API's own bounded pool (`deps.QueryRunner`); too many at once is a 429 with Retry-After.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from hub.api.auth import require
from hub.api.deps import Ctx
from hub.api.query_json import query_answer
from hub.api.routes.params import parse_agg, parse_int, parse_metric, time_range
from hub.api.timeparse import parse_duration_ms
from hub.matchers import parse_matchers
from hub.store.base import (
    MAX_POINTS_LIMIT,
    Agg,
    RangeQuery,
    Store,
)
from shared.model import SeriesKey

router = APIRouter(prefix="/api/v1", dependencies=[require("series:read")], tags=["series"])

MAX_POINTS_DEFAULT = 11_000
MAX_SERIES_LIMIT = 100_000


def _key_json(key: SeriesKey) -> dict[str, Any]:
    return {"metric": key.metric, "labels": dict(key.labels)}


@router.get("/series")
async def list_series(
    ctx: Ctx,
    metric: str | None = None,
    match: Annotated[list[str] | None, Query()] = None,
    limit: str | None = None,
) -> dict[str, Any]:
    """Series keys, optionally filtered by metric and label matchers (`match=agent=sw1`, repeatable)."""
    try:
        name = parse_metric(metric)
        matchers = parse_matchers(match)
        most = parse_int("limit", limit, 10_000, 1, MAX_SERIES_LIMIT)
    except ValueError as exc:
        raise ctx.queries.bad_request("series", str(exc)) from None
    keys = await ctx.queries.run("series", ctx.store.series, name, matchers)
    return {"series": [_key_json(k) for k in keys[:most]], "total": len(keys)}


def _query_body(store: Store, q: RangeQuery) -> bytes:
    """Runs the query and serializes the answer, both in the query pool: the event loop (which gRPC
    intake shares) only writes the bytes out."""
    return query_answer(q.start_ms, q.end_ms, store.query(q))


@router.get("/query")
async def query(
    ctx: Ctx,
    metric: str | None = None,
    match: Annotated[list[str] | None, Query()] = None,
    start: str = "-1h",
    end: str = "now",
    step: str | None = None,
    agg: str = Agg.AVG.value,
    max_points: str | None = None,
) -> Response:
    """Points of every matching series in [start, end], raw or aggregated per `step`.

    With at most `max_points` points in every series the raw points come back; otherwise the step is
    widened server-side to fit the data present, so a year-long query never ships millions of points
    to a browser and a wide range around an hour of data still gets a useful resolution.
    """
    try:
        start_ms, end_ms = time_range(ctx, start, end)
        if metric is None:
            raise ValueError("metric is required")
        q = RangeQuery(
            metric,
            start_ms,
            end_ms,
            parse_matchers(match),
            parse_duration_ms(step) if step is not None else None,
            parse_agg(agg),
            parse_int("max_points", max_points, MAX_POINTS_DEFAULT, 1, MAX_POINTS_LIMIT),
        )
    except ValueError as exc:
        raise ctx.queries.bad_request("query", str(exc)) from None
    body = await ctx.queries.run("query", _query_body, ctx.store, q)
    return Response(body, media_type="application/json")
