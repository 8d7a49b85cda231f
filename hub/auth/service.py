"""The auth service: logins, refreshes, logouts, users and keys, each change audited, and the one
`authenticate` every entry point (REST, WebSocket) checks a credential with."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from hub.auth.audit import AuditLog
from hub.auth.config import AuthConfig, BucketConfig
from hub.auth.jwt import LEEWAY_MS, AccessClaims, AccessTokens, SigningKeys
from hub.auth.keys import ApiKeyInfo, ApiKeys
from hub.auth.metrics import AuthMetrics
from hub.auth.passwords import PasswordPool, check_policy, needs_rehash
from hub.auth.principal import Principal, PrincipalKind
from hub.auth.ratelimit import RateLimiter, SharedRateLimiter
from hub.auth.rbac import Role, scopes_of
from hub.auth.sessions import RefreshOutcome, Sessions
from hub.auth.tokens import hash_secret
from hub.auth.users import UserError, UserInfo, Users
from hub.identity.db import EnrollState
from shared.clock import Clock

T = TypeVar("T")

# Longer than any token or key the hub issues: anything bigger is refused before parsing or hashing.
MAX_CREDENTIAL_LEN = 4096
# A credential the database confirmed is trusted this long without another read, so a request costs no
# thread hop or query (bench/auth.py). Revocations made through this process forget it at once; other
# processes sharing the database see them within this.
RECHECK_S = 1.0
# Beyond this many remembered keys or sessions the memory starts over (each entry is rechecked anyway).
MAX_REMEMBERED = 10_000


class Limit(StrEnum):
    """The rate limits (see `RateLimitsConfig`)."""

    LOGIN_PER_IP = "login_per_ip"
    LOGIN_PER_USER = "login_per_user"
    API_PER_IP = "api_per_ip"
    READ_PER_PRINCIPAL = "read_per_principal"
    WRITE_PER_PRINCIPAL = "write_per_principal"


# Kept in the state database for every hub process at once: a guesser must not get a budget per replica.
# The rest are checked on every request, where a database write each would cost more than they save.
SHARED_LIMITS = (Limit.LOGIN_PER_IP, Limit.LOGIN_PER_USER)


class AuthError(Exception):
    """Raised when an identity change is refused; `status` is the HTTP answer (400, 401, 404, 409)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or refresh hands out."""

    access_token: str
    expires_ms: int
    refresh_token: str
    session_id: str


class AuthService:
    """Thread-safe; its blocking work runs on worker threads (argon2 on its own bounded pool)."""

    def __init__(
        self, engine: sa.Engine, clock: Clock, config: AuthConfig, registry: CollectorRegistry
    ) -> None:
        self.clock = clock
        self.config = config
        self.users = Users(engine)
        self.keys = ApiKeys(engine)
        self.sessions = Sessions(engine)
        self.audit = AuditLog(engine)
        # Enrollment keeps its own audit (hub/identity); /api/v1/audit?source=enrollment reads it here.
        self.enrollment = EnrollState(engine)
        self.metrics = AuthMetrics(registry)
        ttl_ms = int(config.access_ttl_s * 1000)
        signing = SigningKeys(engine, clock, int(config.signing_key_rotate_s * 1000), ttl_ms)
        self.tokens = AccessTokens(signing, clock, ttl_ms)
        self._passwords = PasswordPool()
        # SHA-256 of a key's secret -> (who, monotonic time confirmed); session id -> time confirmed live.
        self._keys_seen: dict[str, tuple[Principal, float]] = {}
        self._sessions_seen: dict[str, float] = {}
        # SHA-256 of an access token -> its verified claims (signature checks cost ~0.1 ms each).
        self._tokens_seen: dict[str, AccessClaims] = {}
        limits = config.rate_limits
        self._limits = {limit: _limiter(getattr(limits, limit.value), clock) for limit in Limit}
        self._shared = {
            limit: _shared_limiter(engine, limit, getattr(limits, limit.value), clock)
            for limit in SHARED_LIMITS
        }

    # ---- credentials ----------------------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal | None:
        """Who presents `token` (a JWT access token or an API key), or None when it is not valid now.

        The seam every entry point uses (REST dependency, WebSocket first message or subprotocol). Never
        raises for a bad token: malformed, forged, expired, revoked and unknown all give None. A caller
        holding a connection open re-checks before `Principal.expires_ms` (or periodically, to see
        revocations): the answer reflects revocations made by any hub process sharing the database.
        """
        if not token or len(token) > MAX_CREDENTIAL_LEN:
            return None
        known = self._remembered(token)
        return known if known is not None else await asyncio.to_thread(self.check, token)

    def check(self, token: str) -> Principal | None:
        """`authenticate`, blocking: one indexed read of the state database, whose answer is remembered."""
        if not token or len(token) > MAX_CREDENTIAL_LEN:
            return None
        now = self.clock.now_ms()
        if token.count(".") != 2:
            principal = self.keys.check(token, now)
            if principal is not None:
                self._remember(self._keys_seen, hash_secret(token), (principal, self.clock.monotonic()))
            return principal
        claims = self.tokens.verify(token)
        if claims is None or not self.sessions.is_live(claims.session_id, now):
            return None
        self._remember(self._sessions_seen, claims.session_id, self.clock.monotonic())
        return _user(claims)

    def _remembered(self, token: str) -> Principal | None:
        """The caller, when the database confirmed this credential less than RECHECK_S ago (no I/O)."""
        fresh_after = self.clock.monotonic() - RECHECK_S
        if token.count(".") != 2:
            seen = self._keys_seen.get(hash_secret(token))
            if seen is None or seen[1] < fresh_after:
                return None
            principal = seen[0]
            expired = principal.expires_ms is not None and principal.expires_ms <= self.clock.now_ms()
            return None if expired else principal
        digest = hash_secret(token)
        claims = self._tokens_seen.get(digest)
        if claims is None:
            claims = self.tokens.verify(token, reload=False)
            if claims is None:
                return None
            self._remember(self._tokens_seen, digest, claims)  # a genuine token's claims never change
        if claims.expires_ms + LEEWAY_MS <= self.clock.now_ms():
            return None
        if self._sessions_seen.get(claims.session_id, float("-inf")) < fresh_after:
            return None
        return _user(claims)

    @staticmethod
    def _remember(memory: dict[str, T], key: str, value: T) -> None:
        if len(memory) >= MAX_REMEMBERED:
            memory.clear()
        memory[key] = value

    def _forget(self) -> None:
        """After any revocation or identity change: the next request of everyone reads the database."""
        self._keys_seen.clear()
        self._sessions_seen.clear()

    def limit(self, limit: Limit, key: str) -> float:
        """Takes one request from `key`'s bucket of `limit` in this process: 0 when allowed, else
        seconds to wait. For the per-request limits (`limit_shared` for the login ones)."""
        return self._limits[limit].take(key)

    async def limit_shared(self, limit: Limit, key: str) -> float:
        """Like `limit`, from the one bucket every hub process on the database shares (login limits)."""
        return await asyncio.to_thread(self._shared[limit].take, key)

    # ---- sessions -------------------------------------------------------------------------------------

    async def login(self, username: str, password: str, peer: str) -> TokenPair | None:
        """A session for a user whose password matches; None (and an audited failure) otherwise.

        An unknown or disabled user costs one argon2 verify too, so timing does not tell them apart.
        """
        found = await asyncio.to_thread(self.users.credentials, username)
        user, stored = found if found is not None else (None, None)
        ok = await self._passwords.verify(stored, password)
        now = self.clock.now_ms()
        if user is None or not ok or user.disabled_ms is not None:
            self.metrics.logins.labels("failed").inc()
            await asyncio.to_thread(
                self.audit.record, now, f"user:{username}", "auth.login", username, peer, "denied"
            )
            return None
        if stored is not None and needs_rehash(stored):  # hashed with older parameters than today's
            digest = await self._passwords.hash(password)
            await asyncio.to_thread(self.users.set_password_hash, user.id, digest, now)
        pair = await asyncio.to_thread(self._open_session, user)
        self.metrics.logins.labels("ok").inc()
        await asyncio.to_thread(
            self.audit.record,
            now,
            f"user:{username}",
            "auth.login",
            username,
            peer,
            "ok",
            None,
            {"session": pair.session_id},
        )
        return pair

    def _open_session(self, user: UserInfo) -> TokenPair:
        session_id, refresh = self.sessions.start(
            user.id, self.clock.now_ms(), int(self.config.session_ttl_s * 1000)
        )
        access, exp_ms = self.tokens.issue(user.id, user.username, user.role, session_id)
        return TokenPair(access, exp_ms, refresh, session_id)

    async def refresh(self, refresh_token: str, peer: str) -> TokenPair | RefreshOutcome:
        """New tokens for a current refresh token, else why not (a reuse revokes the session)."""
        if len(refresh_token) > MAX_CREDENTIAL_LEN:
            return RefreshOutcome.UNKNOWN
        rotation = await asyncio.to_thread(self.sessions.rotate, refresh_token, self.clock.now_ms())
        self.metrics.refreshes.labels(rotation.outcome.value).inc()
        if rotation.outcome is RefreshOutcome.REUSED:
            self._forget()
            await asyncio.to_thread(
                self.audit.record,
                self.clock.now_ms(),
                "-",
                "auth.refresh_reused",
                f"session:{rotation.session_id}",
                peer,
                "revoked",
            )
        session_id, user_id, fresh = rotation.session_id, rotation.user_id, rotation.refresh_token
        if (
            rotation.outcome is not RefreshOutcome.ROTATED
            or session_id is None
            or user_id is None
            or not fresh
        ):
            return rotation.outcome
        user = await asyncio.to_thread(self.users.get, user_id)
        if user is None or user.disabled_ms is not None:
            await asyncio.to_thread(self.sessions.revoke, session_id, "user_gone", self.clock.now_ms())
            self._forget()
            return RefreshOutcome.ENDED
        access, exp_ms = self.tokens.issue(user.id, user.username, user.role, session_id)
        return TokenPair(access, exp_ms, fresh, session_id)

    async def logout(self, principal: Principal, peer: str) -> None:
        """Ends the caller's session: its access and refresh tokens stop working at once.

        Raises:
            AuthError: 400 when the caller is an API key (revoke it instead).
        """
        if principal.session_id is None:
            raise AuthError(400, "an API key has no session; revoke the key instead")
        now = self.clock.now_ms()
        await asyncio.to_thread(self.sessions.revoke, principal.session_id, "logout", now)
        self._forget()
        await asyncio.to_thread(
            self.audit.record,
            now,
            principal.actor,
            "auth.logout",
            f"session:{principal.session_id}",
            peer,
            "ok",
        )

    async def change_password(self, principal: Principal, current: str, new: str, peer: str) -> None:
        """Sets a user's own password; every other session of the user ends.

        Raises:
            AuthError: 400 for an API key or a password the policy refuses, 401 when `current` is wrong.
        """
        if principal.kind is not PrincipalKind.USER:
            raise AuthError(400, "only a user has a password")
        try:
            check_policy(new)
        except ValueError as exc:
            raise AuthError(400, str(exc)) from None
        stored = await asyncio.to_thread(self.users.password_hash, principal.id)
        if not await self._passwords.verify(stored, current):
            raise AuthError(401, "the current password is wrong")
        digest = await self._passwords.hash(new)
        now = self.clock.now_ms()
        await asyncio.to_thread(self.users.set_password_hash, principal.id, digest, now)
        ended = await asyncio.to_thread(
            self.sessions.revoke_user, principal.id, "password_changed", now, principal.session_id
        )
        self._forget()
        await asyncio.to_thread(
            self.audit.record,
            now,
            principal.actor,
            "user.password",
            f"user:{principal.name}",
            peer,
            "ok",
            None,
            {"other_sessions_ended": ended},
        )

    # ---- users ----------------------------------------------------------------------------------------

    async def add_user(self, actor: str, username: str, password: str, role: Role, peer: str) -> UserInfo:
        """Raises AuthError 400 (bad name or password) or 409 (name taken)."""
        try:
            digest = await self._passwords.hash(password)
            user = await asyncio.to_thread(self.users.add, username, digest, role, self.clock.now_ms())
        except UserError as exc:
            raise AuthError(409 if "exists" in str(exc) else 400, str(exc)) from None
        except ValueError as exc:
            raise AuthError(400, str(exc)) from None
        await self._record(actor, "user.add", f"user:{username}", peer, None, user.as_json())
        return user

    async def update_user(
        self, actor: str, user_id: str, peer: str, role: Role | None = None, disabled: bool | None = None
    ) -> UserInfo:
        """A role change or disabling ends the user's sessions (their tokens carry the old role).

        Raises:
            AuthError: 404 when there is no such user.
        """
        now = self.clock.now_ms()
        changed = await asyncio.to_thread(self.users.update, user_id, now, role, disabled)
        if changed is None:
            raise AuthError(404, "no such user")
        before, after = changed
        if before.role != after.role or (after.disabled_ms is not None and before.disabled_ms is None):
            await asyncio.to_thread(self.sessions.revoke_user, user_id, "user_changed", now)
            self._forget()
        await self._record(
            actor, "user.update", f"user:{after.username}", peer, before.as_json(), after.as_json()
        )
        return after

    async def delete_user(self, actor: str, user_id: str, peer: str) -> UserInfo:
        """Raises AuthError 404 when there is no such user."""
        gone = await asyncio.to_thread(self.users.delete, user_id)
        if gone is None:
            raise AuthError(404, "no such user")
        await asyncio.to_thread(self.sessions.revoke_user, user_id, "user_deleted", self.clock.now_ms())
        self._forget()
        await self._record(actor, "user.delete", f"user:{gone.username}", peer, gone.as_json(), None)
        return gone

    # ---- API keys -------------------------------------------------------------------------------------

    async def create_key(
        self,
        actor: str,
        name: str,
        role: Role,
        scopes: frozenset[str] | None,
        ttl_s: float | None,
        peer: str,
    ) -> tuple[ApiKeyInfo, str]:
        """A new key and its secret (shown once). Raises AuthError 400 for scopes its role lacks."""
        if scopes is not None and not scopes <= scopes_of(role.value):
            raise AuthError(400, f"role {role.value} has no scope {sorted(scopes - scopes_of(role.value))}")
        now = self.clock.now_ms()
        expires = None if ttl_s is None else now + int(ttl_s * 1000)
        info, secret = await asyncio.to_thread(self.keys.create, name, role, scopes, expires, actor, now)
        await self._record(actor, "key.create", f"key:{info.id}", peer, None, info.as_json())
        return info, secret

    async def revoke_key(self, actor: str, key_id: str, peer: str) -> ApiKeyInfo:
        """Raises AuthError 404 when there is no live key of that id."""
        changed = await asyncio.to_thread(self.keys.revoke, key_id, self.clock.now_ms())
        if changed is None:
            raise AuthError(404, "no such live key")
        self._forget()
        before, after = changed
        await self._record(actor, "key.revoke", f"key:{key_id}", peer, before.as_json(), after.as_json())
        return after

    async def _record(
        self, actor: str, action: str, target: str, peer: str, before: object, after: object
    ) -> None:
        await asyncio.to_thread(
            self.audit.record, self.clock.now_ms(), actor, action, target, peer, "ok", before, after
        )

    def close(self) -> None:
        self._passwords.close()


def _user(claims: AccessClaims) -> Principal:
    return Principal(
        PrincipalKind.USER,
        claims.user_id,
        claims.username,
        claims.role,
        scopes_of(claims.role),
        claims.expires_ms,
        claims.session_id,
    )


def _limiter(bucket: BucketConfig, clock: Clock) -> RateLimiter:
    return RateLimiter(bucket.rate, bucket.burst, clock.monotonic)


def _shared_limiter(engine: sa.Engine, limit: Limit, bucket: BucketConfig, clock: Clock) -> SharedRateLimiter:
    return SharedRateLimiter(engine, limit.value, bucket.rate, bucket.burst, clock.now_ms)
