"""`POST /webhooks/generic/{source_id}`: signed JSON from any tool, mapped by the source's JMESPath
mapping (or preset) to alerts or metric points; and `POST .../test`, the same mapping as a dry run.

Checked in this order, each refusal counted (`outpost_hub_ingest_rejected_total{transport="generic"}`)
and never logged with the body: 429 + Retry-After (per client address, then per source), 404 (no such
source), 415 (not `application/json`), 413 (over `webhooks.generic.max_body_bytes`), 401 (a signature
no active secret of the source made, a timestamp missing or outside the source's window, a replayed
or missing delivery id when the source names a replay header), 400 (not JSON, or the mapping produced
no valid alert or point). Alerts go to the alert engine (`submit_signals`; a resolved status resolves);
points are stored as the batch of the agent `webhook:<source id>`, so a source only ever writes its
own series.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse

from hub.alerts.model import Signal
from hub.api.auth import client_ip, require
from hub.api.deps import Ctx, HubContext, submit_signals
from hub.api.routes.signed_push import Refused, answer, deliveries_of, json_body, take_delivery
from hub.api.routes.webhook_sources import SLUG, checked_mapping, sources_of
from hub.auth.ratelimit import RateLimiter, retry_after
from hub.ingest.sources.repository import Source
from hub.ingest.webhooks import mapping, signature
from hub.ingest.webhooks.config import BucketConfig
from shared.model import SeriesPoints

router = APIRouter(tags=["webhooks"])

TRANSPORT = "generic"
AGENT_PREFIX = "webhook:"
# How long a delivery id stays taken when the source signs no timestamp (with one: its window, since
# the timestamp check refuses anything older).
REPLAY_WINDOW_MS = 86_400_000
_SLUG = re.compile(SLUG)
JSON_BODY: dict[str, Any] = {"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}

SourceId = Annotated[str, Path(max_length=200)]
Normalized = list[Signal] | tuple[SeriesPoints, ...]


@router.post(
    "/webhooks/generic/{source_id}", status_code=204, response_class=Response, openapi_extra=JSON_BODY
)
async def generic_webhook(request: Request, ctx: Ctx, source_id: SourceId) -> Response:
    """A delivery from the source `source_id`, signed with one of its active secrets."""
    try:
        source, secrets = await _source(request, ctx, source_id)
        body = await _body(request, ctx)
        delivery = await _check_signature(request, ctx, source, secrets, body)
        compiled = _compiled(source)
        normalized = await asyncio.to_thread(_normalize, compiled, source.id, body, ctx.clock.now_ms())
    except Refused as exc:
        return answer(ctx, TRANSPORT, exc)
    try:
        refused = await _hand_over(ctx, source.id, normalized)
    except HTTPException as exc:  # the alert engine cannot be reached (503)
        refused = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    if refused is None:
        ctx.metrics.webhook_deliveries.labels(TRANSPORT).inc()
        return Response(status_code=204)
    if refused.status_code == 503 and delivery is not None:  # the sender retries with the same id
        await asyncio.to_thread(deliveries_of(ctx).forget, *delivery)
    return refused


@router.post(
    "/webhooks/generic/{source_id}/test", dependencies=[require("webhooks:read")], openapi_extra=JSON_BODY
)
async def test_mapping(request: Request, ctx: Ctx, source_id: SourceId) -> dict[str, Any]:
    """What a sample payload would become with the source's mapping: the normalized alerts or points,
    nothing stored and no signature checked (the caller is an admin, not the sender)."""
    found = await asyncio.to_thread(sources_of(ctx).signing, source_id) if _SLUG.match(source_id) else None
    if found is None:
        raise HTTPException(404, f"no webhook source {source_id[:64]!r}")
    source = found[0]
    try:
        body = await _body(request, ctx)
        normalized = await asyncio.to_thread(
            _normalize, _compiled(source), source.id, body, ctx.clock.now_ms()
        )
    except Refused as exc:
        raise HTTPException(exc.status, exc.message) from None
    if isinstance(normalized, list):
        return {"kind": source.kind, "alerts": [_signal_json(s) for s in normalized]}
    return {"kind": source.kind, "series": [_series_json(s) for s in normalized]}


async def _source(request: Request, ctx: Ctx, source_id: str) -> tuple[Source, list[str]]:
    """The source and its active secrets, once the client address and the source are within limits."""
    cfg = ctx.webhooks.generic
    per_ip, per_source = _limiters(request, ctx, cfg.per_ip, cfg.per_source)
    wait = per_ip.take(client_ip(request))
    if wait:
        raise Refused(
            429, "rate_limited", "too many requests; retry later", {"Retry-After": retry_after(wait)}
        )
    found = await asyncio.to_thread(sources_of(ctx).signing, source_id) if _SLUG.match(source_id) else None
    if found is None:
        raise Refused(404, "unknown_source", "no such webhook source")
    wait = per_source.take(found[0].id)
    if wait:
        raise Refused(
            429, "rate_limited", "too many requests; retry later", {"Retry-After": retry_after(wait)}
        )
    return found


async def _body(request: Request, ctx: Ctx) -> bytes:
    """The delivery's raw JSON body, within the generic sources' size limit."""
    return await json_body(request, ctx.webhooks.generic.max_body_bytes, "webhook deliveries")


async def _check_signature(
    request: Request, ctx: Ctx, source: Source, secrets: list[str], body: bytes
) -> tuple[str, str] | None:
    """Signature, then timestamp window, then delivery id; refuses with 401 at the first that fails.

    Returns the delivery's scope and id as taken in the ledger (None: the source names no replay
    header)."""
    scheme = signature.Scheme.from_settings(source.signature)
    stamp = request.headers.get(scheme.timestamp_header) if scheme.timestamp_header else None
    if not signature.verify(scheme, secrets, body, request.headers.get(scheme.header, ""), stamp):
        raise Refused(401, "bad_signature", "invalid signature")
    now_ms = ctx.clock.now_ms()
    if scheme.timestamp_header:
        sent_ms = signature.timestamp_ms(stamp or "")
        if sent_ms is None:
            raise Refused(401, "stale", f"{scheme.timestamp_header} is required")
        if abs(now_ms - sent_ms) > scheme.window_s * 1000:
            raise Refused(401, "stale", f"{scheme.timestamp_header} is outside the accepted window")
    replay_header = source.signature.get("replay_header")
    if not replay_header:
        return None
    key = (f"generic:{source.id}", request.headers.get(replay_header, ""))
    window_ms = int(scheme.window_s * 1000) if scheme.timestamp_header else REPLAY_WINDOW_MS
    await take_delivery(ctx, key[0], replay_header, key[1], window_ms, now_ms)
    return key


def _compiled(source: Source) -> mapping.CompiledMapping:
    try:
        return checked_mapping(source.kind, source.preset, source.mapping)
    except HTTPException:  # saved valid; only a changed JMESPath library could make it fail now
        raise Refused(400, "bad_mapping", "the source's mapping no longer compiles: save it again") from None


def _normalize(compiled: mapping.CompiledMapping, source_id: str, body: bytes, now_ms: int) -> Normalized:
    """Parses and maps one body (on a worker thread: a large payload must not stall the event loop)."""
    try:
        doc = mapping.load(body)
        if compiled.kind is mapping.Kind.ALERTS:
            return mapping.alerts_of(compiled, source_id, doc, now_ms)
        return mapping.points_of(compiled, doc, now_ms)
    except mapping.PayloadError as exc:
        raise Refused(400, "invalid", str(exc)) from None


async def _hand_over(ctx: HubContext, source_id: str, normalized: Normalized) -> Response | None:
    """Alerts to the alert engine, points to the store as the source's batch; the answer to give when
    the store refused them."""
    if isinstance(normalized, list):
        await submit_signals(ctx, normalized, AGENT_PREFIX + source_id)
        ctx.metrics.webhook_signals.labels(TRANSPORT).inc(len(normalized))
        return None
    if ctx.ingestor is None:
        return JSONResponse({"detail": "this hub process takes no pushed data (role: api)"}, status_code=503)
    outcome = await ctx.ingestor.ingest_series(AGENT_PREFIX + source_id, normalized, TRANSPORT)
    if outcome.retry_after_ms:
        retry_s = str(max(1, -(-outcome.retry_after_ms // 1000)))
        return JSONResponse(
            {"detail": "hub busy; retry later"}, status_code=503, headers={"Retry-After": retry_s}
        )
    if outcome.error:
        return JSONResponse({"detail": outcome.error}, status_code=400)
    return None


def _limiters(
    request: Request, ctx: Ctx, per_ip: BucketConfig, per_source: BucketConfig
) -> tuple[RateLimiter, RateLimiter]:
    """The app's two token buckets (kept on the app, so tests running several hubs keep theirs apart)."""
    limiters: tuple[RateLimiter, RateLimiter] | None = getattr(request.app.state, "generic_limits", None)
    if limiters is None:
        limiters = (
            RateLimiter(per_ip.rate, per_ip.burst, ctx.clock.monotonic),
            RateLimiter(per_source.rate, per_source.burst, ctx.clock.monotonic),
        )
        request.app.state.generic_limits = limiters
    return limiters


def _signal_json(s: Signal) -> dict[str, Any]:
    return {
        "labels": dict(s.labels),
        "firing": s.firing,
        "ts_ms": s.ts_ms,
        "severity": s.severity,
        "annotations": dict(s.annotations),
        "fingerprint": s.fingerprint,
        "source": s.source,
    }


def _series_json(s: SeriesPoints) -> dict[str, Any]:
    return {
        "metric": s.key.metric,
        "labels": dict(s.key.labels),
        "points": [[int(t), float(v)] for t, v in zip(s.timestamps_ms, s.values, strict=True)],
    }
