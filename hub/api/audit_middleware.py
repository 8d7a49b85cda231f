"""Audits every change made through the API that its route does not audit itself.

A POST, PUT, PATCH or DELETE under `/api/v1/` is recorded once answered: who (the authenticated caller),
what (method and route template, the path as target), when, from where (client IP), the status as
outcome and, for a successful answer, its JSON body (bounded) as the state after. Routes that record a
richer entry themselves (identity changes with before/after, logins) set `request.state.audited`.
Refused requests (401, 403, 429, 422) are not changes and are counted on /metrics instead.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.metrics_middleware import route_template
from hub.auth.audit import MAX_STATE_CHARS, AuditLog
from hub.auth.principal import Principal
from shared.clock import Clock

CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PREFIX = "/api/v1/"


class AuditMiddleware:
    """Pure ASGI middleware; the entry is written after the answer went out."""

    def __init__(self, app: ASGIApp, audit: AuditLog, clock: Clock, failures: Counter) -> None:
        self._app = app
        self._audit = audit
        self._clock = clock
        self._failures = failures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES or not scope["path"].startswith(PREFIX):
            await self._app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # request.state of the handlers lives in this dict
        status = 500
        body = bytearray()

        async def send_and_keep(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and len(body) <= MAX_STATE_CHARS:
                body.extend(message.get("body", b"")[: MAX_STATE_CHARS + 1 - len(body)])
            await send(message)

        root_path = scope.get("root_path", "")
        try:
            await self._app(scope, receive, send_and_keep)
        finally:
            principal = state.get("principal")
            if isinstance(principal, Principal) and not state.get("audited") and status < 400:
                await self._record(scope, root_path, principal, status, bytes(body))

    async def _record(self, scope: Scope, root_path: str, who: Principal, status: int, body: bytes) -> None:
        client = scope.get("client")
        peer = client[0] if client else "-"
        action = f"{scope['method']} {route_template(scope, root_path)}"
        after = body.decode("utf-8", "replace") if body else None
        try:
            await asyncio.to_thread(
                self._audit.record,
                self._clock.now_ms(),
                who.actor,
                action,
                scope["path"],
                peer,
                str(status),
                None,
                after,
            )
        except Exception:  # the change is made and answered; a lost audit entry must not fail it
            self._failures.inc()
