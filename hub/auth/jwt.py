"""Short-lived JWT access tokens (PyJWT): HS256 pinned, `kid` naming the signing key, keys rotated.

Signing keys live in the state database, so every API process verifies what any of them issued. The
newest key signs; a key is replaced once it is `rotate_after_ms` old and keeps verifying until every
token it signed has expired (`retire_ms`), so a rotation logs nobody out. A token whose `kid` this
process has not seen makes it re-read the keys (at most once a second: unknown kids cost no queries).

The header's `alg` is never trusted: only HS256 is accepted, so `alg: none` and algorithm-confusion
forgeries fail. Signature, issuer, audience and required claims are PyJWT's checks; `exp`, `nbf` and
`iat` are checked here against the injected clock (with `LEEWAY_MS` for skew between hosts).
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import jwt
import sqlalchemy as sa

from hub.auth.models import signing_keys
from shared.clock import Clock

ALGORITHM = "HS256"
ISSUER = "outpost-hub"
AUDIENCE = "outpost-api"
LEEWAY_MS = 5_000
RELOAD_EVERY_S = 1.0
_REQUIRED = ["exp", "iat", "nbf", "sub", "sid", "name", "role", "iss", "aud"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified access token says."""

    user_id: str
    username: str
    role: str
    session_id: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    secret: bytes
    created_ms: int
    retire_ms: int


class SigningKeys:
    """The signing keys, cached in memory; thread-safe."""

    def __init__(self, engine: sa.Engine, clock: Clock, rotate_after_ms: int, verify_for_ms: int) -> None:
        """`verify_for_ms` is how long past its replacement a key still verifies (the access token TTL)."""
        self._engine = engine
        self._clock = clock
        self._rotate_after_ms = rotate_after_ms
        self._verify_for_ms = verify_for_ms
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._loaded_at = float("-inf")

    def signing_key(self) -> _Key:
        """The newest key younger than `rotate_after_ms`; one is made (older ones set to retire) if none."""
        now = self._clock.now_ms()
        newest = self._newest()
        if newest is None or now - newest.created_ms >= self._rotate_after_ms:
            self._reload()
            newest = self._newest()
        if newest is None or now - newest.created_ms >= self._rotate_after_ms:
            newest = self._rotate(now)
        return newest

    def verifying_key(self, kid: str, reload: bool = True) -> bytes | None:
        """The secret of key `kid` if it is known and not retired; `reload=False` never reads the database
        (an unknown kid is then None)."""
        key = self._keys.get(kid)
        if key is None and reload and self._clock.monotonic() - self._loaded_at >= RELOAD_EVERY_S:
            self._reload()
            key = self._keys.get(kid)
        if key is None or key.retire_ms <= self._clock.now_ms():
            return None
        return key.secret

    def _newest(self) -> _Key | None:
        return max(self._keys.values(), key=lambda k: k.created_ms, default=None)

    def _reload(self) -> None:
        with self._engine.connect() as db:
            rows = db.execute(sa.select(signing_keys)).all()
        keys = {
            str(r.kid): _Key(str(r.kid), base64.b64decode(r.secret), int(r.created_ms), int(r.retire_ms))
            for r in rows
        }
        with self._lock:
            self._keys = keys
            self._loaded_at = self._clock.monotonic()

    def _rotate(self, now_ms: int) -> _Key:
        """Adds a key; older keys retire once the tokens they signed have expired. Several processes
        rotating at once each add one: all verify, the newest signs."""
        key = _Key(secrets.token_hex(8), secrets.token_bytes(32), now_ms, now_ms + 2**62)
        with self._engine.begin() as db:
            db.execute(
                signing_keys.update()
                .where(signing_keys.c.retire_ms > now_ms + self._verify_for_ms)
                .values(retire_ms=now_ms + self._verify_for_ms)
            )
            db.execute(signing_keys.delete().where(signing_keys.c.retire_ms <= now_ms))
            db.execute(
                signing_keys.insert().values(
                    kid=key.kid,
                    secret=base64.b64encode(key.secret).decode(),
                    created_ms=key.created_ms,
                    retire_ms=key.retire_ms,
                )
            )
        self._reload()
        return key


class AccessTokens:
    """Issues and verifies access tokens with `keys`."""

    def __init__(self, keys: SigningKeys, clock: Clock, ttl_ms: int) -> None:
        self._keys = keys
        self._clock = clock
        self.ttl_ms = ttl_ms

    def issue(self, user_id: str, username: str, role: str, session_id: str) -> tuple[str, int]:
        """A signed token for the user in `session_id`; returns it and its expiry (ms)."""
        key = self._keys.signing_key()
        now = self._clock.now_ms()
        exp_ms = now + self.ttl_ms
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "name": username,
            "role": role,
            "sid": session_id,
            "iat": now // 1000,
            "nbf": now // 1000,
            "exp": exp_ms // 1000,
        }
        return jwt.encode(
            claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid}
        ), exp_ms // 1000 * 1000

    def verify(self, token: str, reload: bool = True) -> AccessClaims | None:
        """The claims of a genuine, current token; None for anything else (never raises). With
        `reload=False` it does no I/O (a token of a key this process has not loaded yet is None)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            secret = self._keys.verifying_key(kid, reload) if isinstance(kid, str) else None
            if secret is None:
                return None
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": _REQUIRED, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return None
        if not self._current(claims):
            return None
        try:
            return AccessClaims(
                str(claims["sub"]),
                str(claims["name"]),
                str(claims["role"]),
                str(claims["sid"]),
                int(claims["exp"]) * 1000,
            )
        except (TypeError, ValueError):
            return None

    def _current(self, claims: dict[str, Any]) -> bool:
        now = self._clock.now_ms()
        try:
            exp, nbf, iat = (int(claims[k]) * 1000 for k in ("exp", "nbf", "iat"))
        except (TypeError, ValueError):
            return False
        return now < exp + LEEWAY_MS and nbf - LEEWAY_MS <= now and iat - LEEWAY_MS <= now
