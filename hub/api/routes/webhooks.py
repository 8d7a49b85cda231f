"""`POST /webhooks/sentry`: Sentry's integration webhooks as alerts, signed by the integration's secret.

Checked in this order, each refusal counted (`outpost_hub_ingest_rejected_total{transport="sentry"}`)
and never logged with the body: 429 + Retry-After (the API's per-IP limit), 415 (not JSON), 413 (over
1 MB), 401 (bad `Sentry-Hook-Signature`, a `Sentry-Hook-Timestamp` outside the window, a `Request-ID`
any hub process on the state database took within the window), 400 (not JSON, or a field the resource
needs is missing); 404 while the integration has no secret configured (`webhooks.sentry.client_secret`).
Resources other than issue, event_alert, metric_alert and error (installation, comment, ...) are
acknowledged and ignored.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from hub.api.auth import client_ip, too_many
from hub.api.deps import Ctx, submit_signals
from hub.api.routes.signed_push import Refused, answer, deliveries_of, json_body, take_delivery
from hub.auth.service import Limit
from hub.ingest.webhooks import sentry

router = APIRouter(tags=["webhooks"])

TRANSPORT = "sentry"
MAX_BODY_BYTES = 1_000_000


@router.post(
    "/webhooks/sentry",
    status_code=204,
    response_class=Response,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def sentry_webhook(request: Request, ctx: Ctx) -> Response:
    """A Sentry webhook: an issue (created, resolved, ...), an issue or metric alert, or an error."""
    cfg = ctx.webhooks.sentry
    if cfg.client_secret is None:
        return JSONResponse({"detail": "the Sentry integration is not configured"}, status_code=404)
    wait = ctx.auth.limit(Limit.API_PER_IP, client_ip(request))
    if wait:
        raise too_many(ctx, wait, "write", "ip")
    try:
        body = await _checked_body(request, ctx, cfg.client_secret.get_secret_value())
        resolve_after = int(cfg.resolve_after_s * 1000) or None
        resource = request.headers.get("sentry-hook-resource", "")[:64]
        try:
            signal = sentry.signal(resource, body, ctx.clock.now_ms(), resolve_after)
        except sentry.SentryPayloadError as exc:
            raise Refused(400, "invalid", str(exc)) from None
    except Refused as exc:
        return answer(ctx, TRANSPORT, exc)
    if signal is None:
        ctx.metrics.rejected.labels(TRANSPORT, "ignored_resource").inc()
        return Response(status_code=204)
    try:
        await submit_signals(ctx, [signal], "sentry")
    except HTTPException:  # the engine cannot be reached (503): Sentry's retry must not be a replay
        await asyncio.to_thread(deliveries_of(ctx).forget, "sentry", request.headers.get("request-id", ""))
        raise
    return Response(status_code=204)


async def _checked_body(request: Request, ctx: Ctx, secret: str) -> bytes:
    """The raw body once its type, size, signature, timestamp and request id have passed."""
    body = await json_body(request, MAX_BODY_BYTES, "Sentry webhooks")
    if not sentry.signature_ok(body, request.headers.get("sentry-hook-signature", ""), secret):
        raise Refused(401, "bad_signature", "invalid signature")
    now_ms = ctx.clock.now_ms()
    window_ms = int(ctx.webhooks.sentry.timestamp_window_s * 1000)
    try:
        sent_ms = int(float(request.headers.get("sentry-hook-timestamp", "")) * 1000)
    except ValueError:
        raise Refused(401, "stale", "Sentry-Hook-Timestamp is required") from None
    if abs(now_ms - sent_ms) > window_ms:
        raise Refused(401, "stale", "Sentry-Hook-Timestamp is outside the accepted window")
    await take_delivery(ctx, "sentry", "Request-ID", request.headers.get("request-id", ""), window_ms, now_ms)
    return body
