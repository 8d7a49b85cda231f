"""API keys for programs: shown once, stored as a SHA-256, scoped, expiring, revocable, last use kept.

The admin token printed at the hub's first start is the key with id `admin`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import sqlalchemy as sa

from hub.auth.models import api_keys
from hub.auth.principal import Principal, PrincipalKind
from hub.auth.rbac import Role, scopes_of
from hub.auth.tokens import API_KEY_PREFIX, hash_secret, new_id, new_secret
from hub.db.sql import insert_ignore

ADMIN_KEY_ID = "admin"
# `last_used_ms` is written at most this often per key: a write per request would double the cost of
# every authenticated call, and a minute is precise enough to tell a key in use from a dead one.
LAST_USED_EVERY_MS = 60_000


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key without its secret (what listing and the audit log show)."""

    id: str
    name: str
    role: str
    scopes: tuple[str, ...] | None
    created_by: str
    created_ms: int
    expires_ms: int | None
    last_used_ms: int | None
    revoked_ms: int | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "scopes": list(self.scopes) if self.scopes is not None else None,
            "created_by": self.created_by,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "last_used_ms": self.last_used_ms,
            "revoked_ms": self.revoked_ms,
        }


def _info(row: sa.Row[tuple[object, ...]]) -> ApiKeyInfo:
    m = row._mapping
    scopes = tuple(str(m["scopes"]).split()) if m["scopes"] is not None else None
    return ApiKeyInfo(
        str(m["id"]),
        str(m["name"]),
        str(m["role"]),
        scopes,
        str(m["created_by"]),
        int(m["created_ms"]),
        m["expires_ms"],
        m["last_used_ms"],
        m["revoked_ms"],
    )


_PUBLIC = [c for c in api_keys.c if c.name != "secret_hash"]


class ApiKeys:
    """Blocking accessors over the hub's engine; call them from worker threads (they are thread-safe)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._last_written: dict[str, int] = {}

    def ensure_admin_key(self, now_ms: int) -> str | None:
        """Creates the admin key on first start. Returns its secret once (then only its hash is kept)."""
        secret = new_secret(API_KEY_PREFIX)
        with self._engine.begin() as db:  # hubs starting together on one database: exactly one creates it
            new = insert_ignore(
                db,
                api_keys,
                id=ADMIN_KEY_ID,
                name=ADMIN_KEY_ID,
                secret_hash=hash_secret(secret),
                role=Role.ADMIN.value,
                scopes=None,
                created_by="hub",
                created_ms=now_ms,
            )
        return secret if new else None

    def create(
        self,
        name: str,
        role: Role,
        scopes: frozenset[str] | None,
        expires_ms: int | None,
        created_by: str,
        now_ms: int,
    ) -> tuple[ApiKeyInfo, str]:
        """Makes a key; returns it and its secret, which is never available again."""
        secret = new_secret(API_KEY_PREFIX)
        info = ApiKeyInfo(
            new_id(),
            name,
            role.value,
            tuple(sorted(scopes)) if scopes is not None else None,
            created_by,
            now_ms,
            expires_ms,
            None,
            None,
        )
        with self._engine.begin() as db:
            db.execute(
                api_keys.insert().values(
                    id=info.id,
                    name=name,
                    secret_hash=hash_secret(secret),
                    role=info.role,
                    scopes=" ".join(info.scopes) if info.scopes is not None else None,
                    created_by=created_by,
                    created_ms=now_ms,
                    expires_ms=expires_ms,
                )
            )
        return info, secret

    def check(self, secret: str, now_ms: int) -> Principal | None:
        """Who holds `secret`, if it names a key that is neither revoked nor expired; else None."""
        q = sa.select(*_PUBLIC).where(api_keys.c.secret_hash == hash_secret(secret))
        with self._engine.connect() as db:
            row = db.execute(q).first()
        if row is None:
            return None
        key = _info(row)
        if key.revoked_ms is not None or (key.expires_ms is not None and key.expires_ms <= now_ms):
            return None
        self._note_use(key.id, now_ms)
        narrowed = frozenset(key.scopes) if key.scopes is not None else None
        return Principal(
            PrincipalKind.KEY, key.id, key.name, key.role, scopes_of(key.role, narrowed), key.expires_ms
        )

    def _note_use(self, key_id: str, now_ms: int) -> None:
        with self._lock:
            if now_ms - self._last_written.get(key_id, -LAST_USED_EVERY_MS) < LAST_USED_EVERY_MS:
                return
            self._last_written[key_id] = now_ms
        with self._engine.begin() as db:
            db.execute(api_keys.update().where(api_keys.c.id == key_id).values(last_used_ms=now_ms))

    def list(self) -> list[ApiKeyInfo]:
        with self._engine.connect() as db:
            return [_info(r) for r in db.execute(sa.select(*_PUBLIC).order_by(api_keys.c.created_ms))]

    def revoke(self, key_id: str, now_ms: int) -> tuple[ApiKeyInfo, ApiKeyInfo] | None:
        """Revokes a live key; returns it before and after, or None when there is no live key of that id."""
        with self._engine.begin() as db:
            row = db.execute(sa.select(*_PUBLIC).where(api_keys.c.id == key_id)).first()
            if row is None or row.revoked_ms is not None:
                return None
            db.execute(api_keys.update().where(api_keys.c.id == key_id).values(revoked_ms=now_ms))
            after = db.execute(sa.select(*_PUBLIC).where(api_keys.c.id == key_id)).one()
        return _info(row), _info(after)
