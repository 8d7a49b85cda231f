"""Users: a unique name, an argon2id password hash and one role; disabled rather than deleted by default."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from hub.auth.models import users
from hub.auth.rbac import Role
from hub.auth.tokens import new_id

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class UserError(ValueError):
    """Raised when a user cannot be added or changed as asked (bad name, name taken); says why."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user without the password hash (what listing, the audit log and tokens carry)."""

    id: str
    username: str
    role: str
    created_ms: int
    updated_ms: int
    disabled_ms: int | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "disabled": self.disabled_ms is not None,
            "disabled_ms": self.disabled_ms,
        }


_PUBLIC = [c for c in users.c if c.name != "password_hash"]


def _info(row: sa.Row[tuple[object, ...]]) -> UserInfo:
    m = row._mapping
    return UserInfo(
        str(m["id"]),
        str(m["username"]),
        str(m["role"]),
        int(m["created_ms"]),
        int(m["updated_ms"]),
        m["disabled_ms"],
    )


def check_username(username: str) -> None:
    """Raises UserError unless `username` is 1-64 of letters, digits and `._@-`, starting alphanumeric."""
    if not USERNAME.match(username):
        raise UserError("a username is 1-64 letters, digits or . _ @ -, starting with a letter or digit")


class Users:
    """Blocking accessors over the hub's engine; call them from worker threads. Password hashes come in
    already made (hashing is the caller's, on its bounded pool)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, username: str, password_hash: str, role: Role, now_ms: int) -> UserInfo:
        """Raises UserError when the name is malformed or taken."""
        check_username(username)
        info = UserInfo(new_id(), username, role.value, now_ms, now_ms, None)
        try:
            with self._engine.begin() as db:
                db.execute(
                    users.insert().values(
                        id=info.id,
                        username=username,
                        password_hash=password_hash,
                        role=info.role,
                        created_ms=now_ms,
                        updated_ms=now_ms,
                    )
                )
        except sa.exc.IntegrityError:
            raise UserError(f"user {username!r} exists") from None
        return info

    def credentials(self, username: str) -> tuple[UserInfo, str] | None:
        """The user and their password hash, for a login; None when there is no such user."""
        with self._engine.connect() as db:
            row = db.execute(sa.select(users).where(users.c.username == username)).first()
        return None if row is None else (_info(row), str(row.password_hash))

    def get(self, user_id: str) -> UserInfo | None:
        with self._engine.connect() as db:
            row = db.execute(sa.select(*_PUBLIC).where(users.c.id == user_id)).first()
        return None if row is None else _info(row)

    def password_hash(self, user_id: str) -> str | None:
        with self._engine.connect() as db:
            return db.execute(sa.select(users.c.password_hash).where(users.c.id == user_id)).scalar()

    def list(self) -> list[UserInfo]:
        with self._engine.connect() as db:
            return [_info(r) for r in db.execute(sa.select(*_PUBLIC).order_by(users.c.username))]

    def update(
        self, user_id: str, now_ms: int, role: Role | None = None, disabled: bool | None = None
    ) -> tuple[UserInfo, UserInfo] | None:
        """Changes role and/or disabled state; returns the user before and after, None when unknown."""
        with self._engine.begin() as db:
            row = db.execute(sa.select(*_PUBLIC).where(users.c.id == user_id)).first()
            if row is None:
                return None
            before = _info(row)
            values: dict[str, object] = {"updated_ms": now_ms}
            if role is not None:
                values["role"] = role.value
            if disabled is not None and disabled != (before.disabled_ms is not None):
                values["disabled_ms"] = now_ms if disabled else None
            db.execute(users.update().where(users.c.id == user_id).values(**values))
            after = _info(db.execute(sa.select(*_PUBLIC).where(users.c.id == user_id)).one())
        return before, after

    def set_password_hash(self, user_id: str, password_hash: str, now_ms: int) -> bool:
        with self._engine.begin() as db:
            done = db.execute(
                users.update()
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, updated_ms=now_ms)
            )
        return done.rowcount == 1

    def delete(self, user_id: str) -> UserInfo | None:
        """Removes a user; returns who it was, None when unknown."""
        with self._engine.begin() as db:
            row = db.execute(sa.select(*_PUBLIC).where(users.c.id == user_id)).first()
            if row is None:
                return None
            db.execute(users.delete().where(users.c.id == user_id))
        return _info(row)
