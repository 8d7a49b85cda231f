"""What the signed webhook receivers (Sentry, generic sources) share: one refusal type, the bounded body
read and the delivery-id check, so both refuse alike and count every refusal under their transport.

A refusal is answered `{"detail": message}` with its status and counted as
`outpost_hub_ingest_rejected_total{transport, reason}`; the body is never logged.
"""

from __future__ import annotations

import asyncio

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from hub.api.body import bounded_body
from hub.api.deps import HubContext
from hub.ingest.sources.deliveries import DeliveryLedger

MAX_DELIVERY_ID = 128


class Refused(Exception):
    """A delivery refused before its payload is used: the HTTP status, the counter's reason label and
    the message the sender reads."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.headers = status, reason, message, headers


def answer(ctx: HubContext, transport: str, refused: Refused) -> JSONResponse:
    """Counts the refusal and builds its answer."""
    ctx.metrics.rejected.labels(transport, refused.reason).inc()
    return JSONResponse({"detail": refused.message}, status_code=refused.status, headers=refused.headers)


async def json_body(request: Request, limit: int, what: str) -> bytes:
    """The raw `application/json` body (415 otherwise), refused with 413 as soon as it passes `limit`."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(415, "unsupported_media_type", f"{what} are application/json")
    return await bounded_body(
        request, limit, lambda: Refused(413, "request_too_large", f"body over {limit} bytes")
    )


async def take_delivery(
    ctx: HubContext, scope: str, header: str, delivery: str, window_ms: int, now_ms: int
) -> None:
    """Takes the delivery id `delivery` (sent in `header`) in the ledger every hub process shares;
    401 when it is missing, too long, or taken within `window_ms` already."""
    if not delivery or len(delivery) > MAX_DELIVERY_ID:
        raise Refused(401, "replayed", f"{header} is required (at most {MAX_DELIVERY_ID} characters)")
    if not await asyncio.to_thread(deliveries_of(ctx).first_time, scope, delivery, window_ms, now_ms):
        raise Refused(401, "replayed", f"this {header} was delivered already")


def deliveries_of(ctx: HubContext) -> DeliveryLedger:
    """The delivery ids every hub process on the state database shares (503 in a context without one)."""
    if ctx.deliveries is None:
        raise HTTPException(503, "this hub process takes no signed webhooks")
    return ctx.deliveries
