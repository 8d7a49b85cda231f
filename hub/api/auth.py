"""Authentication and authorization of API requests: every route declares the scope it needs.

`require("alerts:write")` is a route's (or router's) dependency. It rate-limits the client IP before any
credential is looked at, authenticates an `Authorization: Bearer` token (JWT access token or API key) or
an `X-API-Key` header, answers 401 (no or bad credential; counted, never saying why), 403 (a scope the
caller lacks; counted by scope) or 429 with `Retry-After` (counted by group), and leaves the caller on
the request, where handlers that record who acted read it (`caller: Caller`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from hub.api.deps import Ctx, context_of
from hub.auth.principal import Principal
from hub.auth.ratelimit import retry_after
from hub.auth.service import Limit

_bearer = HTTPBearer(auto_error=False, description="A JWT access token (from login) or an API key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_ip(request: Request) -> str:
    """The peer address (the hub trusts no forwarding header: it is not meant to sit behind a proxy
    that rewrites them)."""
    return request.client.host if request.client is not None else "-"


def too_many(ctx: Ctx, wait_s: float, group: str, by: str) -> HTTPException:
    """Counts a rate-limited request and returns the 429 to raise."""
    ctx.auth.metrics.rate_limited.labels(group, by).inc()
    return HTTPException(429, "too many requests; retry later", headers={"Retry-After": retry_after(wait_s)})


def _unauthorized(ctx: Ctx) -> HTTPException:
    ctx.metrics.api_auth_failures.inc()
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, "missing or invalid credential", headers={"WWW-Authenticate": "Bearer"}
    )


async def authorize(
    scopes: SecurityScopes,
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The caller, once per request, checked for every scope in `scopes` (see the module docstring).

    The context is read from the request, not declared as a `Ctx` sub-dependency: each one FastAPI
    resolves is paid on every request (bench/auth.py)."""
    ctx = context_of(request)
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        token = api_key if api_key else (bearer.credentials if bearer is not None else None)
        principal = await _authenticate(request, ctx, token)
    for scope in scopes.scopes:
        _check(ctx, principal, scope)
    return principal


def _check(ctx: Ctx, principal: Principal, scope: str) -> None:
    if not principal.allows(scope):
        ctx.auth.metrics.forbidden.labels(scope).inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs scope {scope}")


async def authorize_token(request: Request, ctx: Ctx, token: str | None, scope: str) -> Principal:
    """`require(scope)` for receivers whose clients send their credential their own way (InfluxDB's
    `Authorization: Token`, `u`/`p`): the same rate limits, 401, 403 and counters."""
    principal = await _authenticate(request, ctx, token)
    _check(ctx, principal, scope)
    return principal


async def _authenticate(request: Request, ctx: Ctx, token: str | None) -> Principal:
    began = time.perf_counter()
    group = "read" if request.method in _READS else "write"
    wait = ctx.auth.limit(Limit.API_PER_IP, client_ip(request))
    if wait:
        raise too_many(ctx, wait, group, "ip")
    principal = await ctx.auth.authenticate(token) if token else None
    if principal is None:
        raise _unauthorized(ctx)
    limit = Limit.READ_PER_PRINCIPAL if group == "read" else Limit.WRITE_PER_PRINCIPAL
    wait = ctx.auth.limit(limit, principal.actor)
    if wait:
        raise too_many(ctx, wait, group, "principal")
    request.state.principal = principal
    ctx.auth.metrics.seconds_by_kind[principal.kind].observe(time.perf_counter() - began)
    return principal


def require(scope: str) -> Any:
    """The dependency a route (or router) declares: the caller must hold `scope`. It appears as the
    operation's security requirement in the OpenAPI document."""
    return Security(authorize, scopes=[scope])


# A handler that records who acted takes `caller: Caller`; the route's `require(...)` has authenticated
# the request already, so this only reads the caller back (one credential check per request).
Caller = Annotated[Principal, Security(authorize)]
