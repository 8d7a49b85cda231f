"""WebSocket streams: `GET /ws` (any topics) and `GET /ws/alerts` (alerts only, as the seed names it).

A connection authenticates (first frame, or the `bearer.<token>` subprotocol: never the URL, which ends
up in logs) through the same seam as the REST API (`AuthService.authenticate`), subscribes once to
topics its scopes allow, then gets frames from its queue in `hub.notify.ws` until it leaves, falls
behind, or its token expires or is revoked (checked again every `ws.recheck_s`). Each end is a close
code and a reason (`hub.notify.ws_protocol.CloseCode`), counted by reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hub.api.deps import HubContext
from hub.auth.principal import Principal
from hub.notify.ws import Client, WsHub
from hub.notify.ws_protocol import (
    PROTOCOL,
    TOPICS,
    CloseCode,
    StreamRequestError,
    Subscription,
    auth_token,
    parse_frame,
    reply,
    subprotocol_token,
    subscription,
)

router = APIRouter()

_REASONS = {
    CloseCode.GOING_AWAY: "hub_stopping",
    CloseCode.TRY_LATER: "hub_full",
    CloseCode.BAD_REQUEST: "bad_request",
    CloseCode.UNAUTHORIZED: "unauthorized",
    CloseCode.FORBIDDEN: "forbidden",
    CloseCode.TOO_SLOW: "too_slow",
    CloseCode.INTERNAL: "internal",
}
CLOSE_GRACE_S = 10.0
_SEND_ERRORS = (WebSocketDisconnect, OSError, RuntimeError)  # the peer went away mid-send


# The scope a token needs for each topic (the REST API's read scope of the same data).
TOPIC_SCOPES = {
    "alerts": "alerts:read",
    "incidents": "incidents:read",
    "anomalies": "series:read",
    "events": "events:read",
    "agents": "agents:read",
}


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    await _serve(websocket, frozenset(TOPICS))


@router.websocket("/ws/alerts")
async def alerts_stream(websocket: WebSocket) -> None:
    await _serve(websocket, frozenset({"alerts"}))


async def _serve(websocket: WebSocket, allowed: frozenset[str]) -> None:
    ctx: HubContext = websocket.app.state.ctx
    offered = list(websocket.scope.get("subprotocols", []))
    await websocket.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
    hub = ctx.ws
    if hub is None:
        await _close(websocket, CloseCode.TRY_LATER, "this hub process serves no streams")
        return
    client: Client | None = None
    code: CloseCode | None = None
    try:
        token, principal, sub = await asyncio.wait_for(
            _handshake(websocket, ctx, offered, allowed), hub.config.auth_timeout_s
        )
        client = hub.join(sub)
        hub.trouble.up()
        code, reason = await _run(websocket, ctx, hub, client, token, principal)
    except TimeoutError:
        code, reason = CloseCode.UNAUTHORIZED, "no auth and subscribe in time"
    except StreamRequestError as exc:
        code, reason = exc.code, str(exc)
    except WebSocketDisconnect:
        code, reason = None, "client left"
    except Exception as exc:  # the state database away during the handshake: closed, counted, logged once
        hub.trouble.down(f"{type(exc).__name__}: {exc}")
        code, reason = CloseCode.INTERNAL, "the hub could not serve this stream; retry"
    label = "client_left" if code is None else _REASONS[code]
    if client is not None:
        hub.leave(client, label)
    else:
        hub.disconnects.labels(label).inc()
    if code is not None:
        await _close(websocket, code, reason)


async def _handshake(
    websocket: WebSocket, ctx: HubContext, offered: list[str], allowed: frozenset[str]
) -> tuple[str, Principal, Subscription]:
    token = subprotocol_token(offered)
    if token is None:
        token = auth_token(parse_frame(await _receive(websocket)))
    principal = await ctx.auth.authenticate(token)
    if principal is None:
        ctx.metrics.api_auth_failures.inc()
        raise StreamRequestError("missing or invalid token", CloseCode.UNAUTHORIZED)
    sub = subscription(parse_frame(await _receive(websocket)), allowed)
    for topic in sorted(sub.topics):
        if not principal.allows(TOPIC_SCOPES[topic]):
            ctx.auth.metrics.forbidden.labels(TOPIC_SCOPES[topic]).inc()
            raise StreamRequestError(f"topic {topic} needs scope {TOPIC_SCOPES[topic]}", CloseCode.FORBIDDEN)
    return token, principal, sub


async def _receive(websocket: WebSocket) -> str | bytes:
    msg = await websocket.receive()
    if msg["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(msg.get("code", 1000))
    text: str | None = msg.get("text")
    return text if text is not None else msg.get("bytes", b"")


async def _run(
    websocket: WebSocket, ctx: HubContext, hub: WsHub, client: Client, token: str, principal: Principal
) -> tuple[CloseCode | None, str]:
    """Sends, listens and re-checks the token until one of them ends the stream; returns how it ended
    (code None: the client left)."""
    left = asyncio.Event()
    tasks = [
        asyncio.create_task(_send(websocket, hub, client, left)),
        asyncio.create_task(_listen(websocket, client, left)),
        asyncio.create_task(_guard(ctx, hub, client, token, principal)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if left.is_set() or client.closed is None:
        return None, "client left"
    return client.closed


async def _send(websocket: WebSocket, hub: WsHub, client: Client, left: asyncio.Event) -> None:
    timeout_s = hub.config.send_timeout_s
    while (frame := await client.next()) is not None:
        try:
            # asyncio.timeout, not wait_for: wait_for makes a task per call, ten per client a second here.
            async with asyncio.timeout(timeout_s):
                await websocket.send_text(frame)
        except TimeoutError:
            client.close(CloseCode.TOO_SLOW, f"too slow: a frame not taken within {timeout_s:g} s")
        except _SEND_ERRORS:
            left.set()
            return


async def _listen(websocket: WebSocket, client: Client, left: asyncio.Event) -> None:
    """Answers pings; anything else after the subscription is a bad request."""
    while client.closed is None:
        try:
            raw = await _receive(websocket)
        except _SEND_ERRORS:
            left.set()
            return
        try:
            obj = parse_frame(raw)
        except StreamRequestError as exc:
            client.close(exc.code, str(exc))
            return
        if obj["type"] == "ping":
            client.push(reply("pong"))
        else:
            client.close(
                CloseCode.BAD_REQUEST, f'unexpected {obj["type"][:32]!r}: only "ping" after subscribe'
            )
            return


async def _guard(ctx: HubContext, hub: WsHub, client: Client, token: str, principal: Principal) -> None:
    """Closes the stream when its token expires or stops being valid: re-checked every `recheck_s`
    (with jitter, so connections opened together do not hit the database together) through the same
    seam as the handshake, so a revocation by any hub process cuts it."""
    recheck_s = hub.config.recheck_s
    expires_ms = principal.expires_ms
    while True:
        wait_s = recheck_s * random.uniform(0.8, 1.0)
        if expires_ms is not None:
            wait_s = min(wait_s, max(0.0, (expires_ms - ctx.clock.now_ms()) / 1000))
        await ctx.clock.sleep(wait_s)
        if expires_ms is not None and ctx.clock.now_ms() >= expires_ms:
            client.close(CloseCode.UNAUTHORIZED, "token expired")
            return
        try:
            renewed = await ctx.auth.authenticate(token)
        except Exception as exc:  # the state database away: keep the stream, check again next time
            hub.trouble.down(f"re-checking a stream's token: {type(exc).__name__}: {exc}")
            continue
        if renewed is None:
            client.close(CloseCode.UNAUTHORIZED, "token revoked")
            return
        expires_ms = renewed.expires_ms


async def _close(websocket: WebSocket, code: CloseCode, reason: str) -> None:
    """Sends the close frame; a client that does not take it within `CLOSE_GRACE_S` (its socket full:
    a slow client) is left to uvicorn, which drops the connection when the handler returns."""
    with contextlib.suppress(TimeoutError, *_SEND_ERRORS):
        # A close reason is at most 123 bytes of UTF-8.
        reason = reason.encode()[:120].decode(errors="ignore")
        await asyncio.wait_for(websocket.close(int(code), reason), CLOSE_GRACE_S)
