"""`/api/v1/users`: admins list, add, change (role, disabled) and delete users; every change audited."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import Caller, client_ip, require
from hub.api.deps import Ctx
from hub.auth.passwords import MAX_PASSWORD_LEN
from hub.auth.rbac import Role
from hub.auth.service import AuthError

router = APIRouter(prefix="/api/v1", tags=["users"])
_ID = Path(max_length=32, pattern=r"^[0-9a-f]{1,32}$")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LEN)]
    role: Role = Role.VIEWER


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None


@router.get("/users", dependencies=[require("users:read")])
async def list_users(ctx: Ctx) -> dict[str, Any]:
    users = await ctx.queries.run("users", ctx.auth.users.list)
    return {"users": [u.as_json() for u in users]}


@router.post("/users", status_code=201, dependencies=[require("users:write")])
async def add_user(ctx: Ctx, caller: Caller, request: Request, body: UserIn) -> dict[str, Any]:
    """Adds a user; the password is hashed with argon2id and never shown again."""
    request.state.audited = True
    try:
        user = await ctx.auth.add_user(
            caller.actor, body.username, body.password, body.role, client_ip(request)
        )
    except AuthError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    return user.as_json()


@router.patch("/users/{user_id}", dependencies=[require("users:write")])
async def update_user(
    ctx: Ctx, caller: Caller, request: Request, user_id: Annotated[str, _ID], body: UserPatch
) -> dict[str, Any]:
    """Changes a user's role or disables them; either ends their sessions (their tokens stop working)."""
    request.state.audited = True
    try:
        user = await ctx.auth.update_user(caller.actor, user_id, client_ip(request), body.role, body.disabled)
    except AuthError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    return user.as_json()


@router.delete("/users/{user_id}", dependencies=[require("users:write")])
async def delete_user(
    ctx: Ctx, caller: Caller, request: Request, user_id: Annotated[str, _ID]
) -> dict[str, Any]:
    request.state.audited = True
    try:
        user = await ctx.auth.delete_user(caller.actor, user_id, client_ip(request))
    except AuthError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    return user.as_json()
