"""`AuthService.authenticate`, the seam REST and WebSocket share, on a real migrated database: it
remembers what the database confirmed for RECHECK_S, forgets at once what its own process revoked, and
sees another process's revocation within RECHECK_S."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from prometheus_client import CollectorRegistry

from hub.auth.config import AuthConfig
from hub.auth.principal import PrincipalKind
from hub.auth.rbac import Role
from hub.auth.service import RECHECK_S, AuthService
from hub.db.engine import create_engine
from shared.clock import FakeClock
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    pair = (migrated_engine(url), create_engine(url))
    yield pair
    for e in pair:
        e.dispose()


async def test_another_process_sees_a_revoked_key_and_a_logout_within_the_recheck_interval(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    clock = FakeClock(1_800_000_000_000)
    here, there = (AuthService(e, clock, AuthConfig(), CollectorRegistry()) for e in engines)
    try:
        info, secret = await here.create_key("key:admin", "ci", Role.OPERATOR, None, None, "cli")
        await here.add_user("key:admin", "alice", PASSWORD, Role.VIEWER, "cli")
        pair = await here.login("alice", PASSWORD, "10.0.0.1")
        assert pair is not None
        for service in (here, there):
            key = await service.authenticate(secret)
            user = await service.authenticate(pair.access_token)
            assert key is not None and (key.kind, key.id, key.role) == (
                PrincipalKind.KEY,
                info.id,
                "operator",
            )
            assert user is not None and (user.kind, user.name, user.session_id) == (
                PrincipalKind.USER,
                "alice",
                pair.session_id,
            )
        await here.revoke_key("key:admin", info.id, "cli")
        alice = await here.authenticate(pair.access_token)
        assert alice is not None
        await here.logout(alice, "10.0.0.1")
        assert await here.authenticate(secret) is None  # this process forgot at once
        assert await here.authenticate(pair.access_token) is None
        assert await there.authenticate(secret) is not None  # the other still trusts what it confirmed...
        await clock.advance(RECHECK_S + 0.01)
        assert await there.authenticate(secret) is None  # ...for RECHECK_S at most
        assert await there.authenticate(pair.access_token) is None
    finally:
        here.close()
        there.close()


async def test_a_remembered_credential_still_expires_on_time(engines: tuple[sa.Engine, sa.Engine]) -> None:
    clock = FakeClock(1_800_000_000_000)
    service = AuthService(engines[0], clock, AuthConfig(access_ttl_s=10), CollectorRegistry())
    try:
        _, secret = await service.create_key("key:admin", "brief", Role.VIEWER, None, 0.5, "cli")
        await service.add_user("key:admin", "bob", PASSWORD, Role.VIEWER, "cli")
        pair = await service.login("bob", PASSWORD, "10.0.0.1")
        assert pair is not None
        assert await service.authenticate(secret) is not None
        assert await service.authenticate(pair.access_token) is not None
        await clock.advance(0.6)  # within RECHECK_S, but past the key's expiry
        assert await service.authenticate(secret) is None
        await clock.advance(10 + 5)  # its ttl and the leeway for skew between hosts
        assert await service.authenticate(pair.access_token) is None
        assert await service.authenticate("x" * 5000) is None and await service.authenticate("") is None
    finally:
        service.close()


async def test_a_password_hashed_with_older_parameters_is_rehashed_at_the_next_login(
    engines: tuple[sa.Engine, sa.Engine],
) -> None:
    service = AuthService(engines[0], FakeClock(1_800_000_000_000), AuthConfig(), CollectorRegistry())
    try:
        old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
        user = service.users.add("carol", old, Role.VIEWER, 1_800_000_000_000)
        assert await service.login("carol", PASSWORD, "10.0.0.1") is not None
        stored = service.users.password_hash(user.id)
        assert stored is not None and stored != old and "m=19456,t=2,p=1" in stored
        assert await service.login("carol", PASSWORD, "10.0.0.1") is not None  # the new hash verifies
    finally:
        service.close()
