"""`/api/v1/keys`: API keys for programs. The secret is in the creation answer only; every change audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import Caller, client_ip, require
from hub.api.deps import Ctx
from hub.auth.rbac import ALL_SCOPES, Role
from hub.auth.service import AuthError

router = APIRouter(prefix="/api/v1", tags=["keys"])
_ID = Path(max_length=32, pattern=r"^[0-9a-z]{1,32}$")
MAX_TTL_S = 5 * 365 * 86_400


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
    role: Role = Role.VIEWER
    # Narrows the role's scopes (None: all of them).
    scopes: Annotated[
        list[Annotated[str, Field(max_length=32)]] | None, Field(max_length=len(ALL_SCOPES))
    ] = None
    # Lifetime in seconds (None: until revoked).
    ttl_s: Annotated[float | None, Field(gt=0, le=MAX_TTL_S)] = None


@router.get("/keys", dependencies=[require("keys:read")])
async def list_keys(ctx: Ctx) -> dict[str, Any]:
    """Every key with its role, scopes, expiry and last use; never a secret."""
    keys = await ctx.queries.run("keys", ctx.auth.keys.list)
    return {"keys": [k.as_json() for k in keys]}


@router.post("/keys", status_code=201, dependencies=[require("keys:write")])
async def create_key(ctx: Ctx, caller: Caller, request: Request, body: KeyIn) -> dict[str, Any]:
    """Makes a key. `secret` is shown in this answer only: store it now."""
    request.state.audited = True
    scopes = frozenset(body.scopes) if body.scopes is not None else None
    try:
        info, secret = await ctx.auth.create_key(
            caller.actor, body.name, body.role, scopes, body.ttl_s, client_ip(request)
        )
    except AuthError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    return {**info.as_json(), "secret": secret}


@router.delete("/keys/{key_id}", dependencies=[require("keys:write")])
async def revoke_key(
    ctx: Ctx, caller: Caller, request: Request, key_id: Annotated[str, _ID]
) -> dict[str, Any]:
    """Revokes a key: requests with it are refused at once, on every hub process."""
    request.state.audited = True
    try:
        info = await ctx.auth.revoke_key(caller.actor, key_id, client_ip(request))
    except AuthError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    return info.as_json()
