"""Rate limits on the real app and a real migrated database: login per IP and per username, API requests
per principal and per IP, each a 429 with Retry-After, counted on /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.api.app import create_app
from hub.api.deps import HubContext
from hub.auth.config import AuthConfig, RateLimitsConfig
from hub.auth.rbac import Role
from hub.auth.service import AuthService
from hub.config import HubConfig
from hub.fleet.agents import Fleet
from hub.store.factory import build_store
from hub.telemetry import HubMetrics
from shared.clock import SystemClock
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

LIMITS = RateLimitsConfig.model_validate(
    {
        "login_per_ip": {"rate": 0.001, "burst": 4},
        "login_per_user": {"rate": 0.001, "burst": 2},
        "api_per_ip": {"rate": 0.001, "burst": 30},
        "read_per_principal": {"rate": 0.001, "burst": 5},
        "write_per_principal": {"rate": 0.001, "burst": 2},
    }
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    engine = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    metrics = HubMetrics()
    auth = AuthService(engine, SystemClock(), AuthConfig(rate_limits=LIMITS), metrics.registry)
    key = auth.keys.ensure_admin_key(1)
    assert key is not None
    await auth.add_user("cli", "alice", "a long enough password", Role.VIEWER, "cli")
    store = build_store(HubConfig(data_dir=tmp_path).store, tmp_path)
    ctx = HubContext(store, Fleet(engine), auth, metrics, SystemClock())
    transport = httpx.ASGITransport(create_app(ctx))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
            yield c, key
    finally:
        ctx.queries.close()
        auth.close()
        engine.dispose()


def _metric(text: str, line_start: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start))


async def test_logins_are_limited_per_username_and_per_ip_with_retry_after(
    client: tuple[httpx.AsyncClient, str],
) -> None:
    c, _ = client
    wrong = {"username": "alice", "password": "guess number one"}
    codes = [(await c.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(3)]
    assert codes == [401, 401, 429]  # two guesses at alice, then her bucket is empty
    other = [
        (await c.post("/api/v1/auth/login", json={**wrong, "username": f"u{i}"})).status_code
        for i in range(3)
    ]
    assert other == [401, 429, 429]  # this IP had four attempts in all
    limited = await c.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "a long enough password"}
    )
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    page = (await c.get("/metrics")).text
    assert _metric(page, 'outpost_hub_api_rate_limited_total{by="user",group="login"}') == 1
    assert _metric(page, 'outpost_hub_api_rate_limited_total{by="ip",group="login"}') == 3
    assert _metric(page, 'outpost_hub_auth_logins_total{outcome="limited"}') == 4


async def test_api_requests_are_limited_per_principal_by_group_and_per_ip(
    client: tuple[httpx.AsyncClient, str],
) -> None:
    c, key = client
    admin = {"X-API-Key": key}
    reads = [(await c.get("/api/v1/auth/me", headers=admin)).status_code for _ in range(6)]
    assert reads == [200] * 5 + [429]
    new_key = {"name": "k", "role": "viewer"}
    writes = [(await c.post("/api/v1/keys", headers=admin, json=new_key)).status_code for _ in range(3)]
    assert writes == [201, 201, 429]  # writes have their own, smaller bucket
    bad = [(await c.get("/api/v1/alerts", headers={"X-API-Key": "opk_wrong"})).status_code for _ in range(25)]
    assert bad.count(401) == 30 - 9 and bad.count(429) == 25 - 21  # 9 of the IP's 30 were spent above
    limited = await c.get("/api/v1/alerts")
    assert limited.status_code == 429 and limited.headers["retry-after"].isdigit()
    page = (await c.get("/metrics")).text
    assert _metric(page, 'outpost_hub_api_rate_limited_total{by="principal",group="read"}') == 1
    assert _metric(page, 'outpost_hub_api_rate_limited_total{by="principal",group="write"}') == 1
    assert _metric(page, 'outpost_hub_api_rate_limited_total{by="ip",group="read"}') == 5
    assert _metric(page, "outpost_hub_api_auth_failures_total") == 21


async def test_password_changes_share_the_users_login_limit(client: tuple[httpx.AsyncClient, str]) -> None:
    c, _ = client
    tokens = await c.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "a long enough password"}
    )
    assert tokens.status_code == 200  # one of alice's two attempts
    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    guess = {"current_password": "maybe this one", "new_password": "something else entirely"}
    codes = [
        (await c.post("/api/v1/auth/password", headers=bearer, json=guess)).status_code for _ in range(2)
    ]
    assert codes == [401, 429]
