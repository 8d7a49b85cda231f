"""Bearer-token authentication for the API. Tokens are stored hashed; failures are counted, not logged."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.api.deps import Ctx

_bearer = HTTPBearer(auto_error=False)


async def require_token(
    ctx: Ctx,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """Returns the caller's role; answers 401 without saying whether the token existed."""
    role = None
    if creds is not None and creds.scheme.lower() == "bearer":
        role = await asyncio.to_thread(ctx.state.check_token, creds.credentials)
    if role is None:
        ctx.metrics.api_auth_failures.inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return role
