"""`/api/v1/auth`: log in (JWT access token + rotating refresh token), refresh, log out, change password.

Login is rate-limited per client IP and per username (password guessing); both answer 429 with
`Retry-After`. A failed login says only that it failed, never whether the user exists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.api.auth import Caller, client_ip, too_many
from hub.api.deps import Ctx
from hub.auth.passwords import MAX_PASSWORD_LEN
from hub.auth.service import MAX_CREDENTIAL_LEN, AuthError, Limit, TokenPair

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LEN)]


class RefreshIn(_In):
    refresh_token: Annotated[str, Field(min_length=1, max_length=MAX_CREDENTIAL_LEN)]


class PasswordIn(_In):
    current_password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LEN)]
    new_password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LEN)]


class TokensOut(BaseModel):
    """`access_token` goes in `Authorization: Bearer`; `refresh_token` is spent by /auth/refresh."""

    access_token: str
    token_type: str = "bearer"
    expires_ms: int
    refresh_token: str


class PrincipalOut(BaseModel):
    kind: str
    id: str
    name: str
    role: str
    scopes: list[str]
    expires_ms: int | None


def _tokens(pair: TokenPair) -> TokensOut:
    return TokensOut(
        access_token=pair.access_token, expires_ms=pair.expires_ms, refresh_token=pair.refresh_token
    )


@router.post("/login")
async def login(ctx: Ctx, request: Request, body: LoginIn) -> TokensOut:
    """Exchanges a username and password for an access token and a refresh token."""
    peer = client_ip(request)
    request.state.audited = True  # the auth service records logins itself, with their outcome
    for limit, key, by in ((Limit.LOGIN_PER_IP, peer, "ip"), (Limit.LOGIN_PER_USER, body.username, "user")):
        wait = await ctx.auth.limit_shared(limit, key)
        if wait:
            ctx.auth.metrics.logins.labels("limited").inc()
            raise too_many(ctx, wait, "login", by)
    pair = await ctx.auth.login(body.username, body.password, peer)
    if pair is None:
        ctx.metrics.api_auth_failures.inc()
        raise HTTPException(401, "wrong username or password", headers=_UNAUTHORIZED)
    return _tokens(pair)


@router.post("/refresh")
async def refresh(ctx: Ctx, request: Request, body: RefreshIn) -> TokensOut:
    """Spends a refresh token for new tokens. A refresh token used twice ends its whole session."""
    peer = client_ip(request)
    request.state.audited = True
    wait = ctx.auth.limit(Limit.API_PER_IP, peer)
    if wait:
        raise too_many(ctx, wait, "write", "ip")
    result = await ctx.auth.refresh(body.refresh_token, peer)
    if not isinstance(result, TokenPair):
        ctx.metrics.api_auth_failures.inc()
        raise HTTPException(401, "invalid refresh token; log in again", headers=_UNAUTHORIZED)
    return _tokens(result)


@router.post("/logout", status_code=204)
async def logout(ctx: Ctx, caller: Caller, request: Request) -> Response:
    """Ends the caller's session: its access token and refresh token stop working at once."""
    request.state.audited = True
    try:
        await ctx.auth.logout(caller, client_ip(request))
    except AuthError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    return Response(status_code=204)


@router.post("/password", status_code=204)
async def change_password(ctx: Ctx, caller: Caller, request: Request, body: PasswordIn) -> Response:
    """Changes the caller's own password (the current one is asked again); other sessions end. Limited
    like logins of that user: a stolen access token must not become a way to guess the password."""
    request.state.audited = True
    wait = await ctx.auth.limit_shared(Limit.LOGIN_PER_USER, caller.name)
    if wait:
        raise too_many(ctx, wait, "login", "user")
    try:
        await ctx.auth.change_password(caller, body.current_password, body.new_password, client_ip(request))
    except AuthError as exc:
        raise HTTPException(exc.status, exc.detail) from None
    return Response(status_code=204)


@router.get("/me")
async def whoami(caller: Caller) -> PrincipalOut:
    """Who the credential names, with its role, scopes and expiry."""
    return PrincipalOut(
        kind=caller.kind.value,
        id=caller.id,
        name=caller.name,
        role=caller.role,
        scopes=sorted(caller.scopes),
        expires_ms=caller.expires_ms,
    )
