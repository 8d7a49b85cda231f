"""Bearer-token authentication for the API. Tokens are stored hashed; failures are counted, not logged."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.api.deps import Ctx
from hub.auth.tokens import CallerInfo

_bearer = HTTPBearer(auto_error=False)


async def require_caller(
    ctx: Ctx,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> CallerInfo:
    """Returns who is calling (token name and role); answers 401 without saying whether the token existed."""
    caller = None
    if creds is not None and creds.scheme.lower() == "bearer":
        caller = await asyncio.to_thread(ctx.tokens.check_token, creds.credentials)
    if caller is None:
        ctx.metrics.api_auth_failures.inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller


# A handler that records who acted (e.g. acknowledged an alert) takes `caller: Caller`. FastAPI runs a
# dependency once per request, so a route under `require_token` that also asks for it checks one token.
Caller = Annotated[CallerInfo, Depends(require_caller)]


async def require_token(caller: Caller) -> str:
    """Gates a route (or a router, as a dependency) on a valid token; returns the caller's role."""
    return caller.role
