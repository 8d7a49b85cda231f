"""Login limits every hub process on one database shares: a bucket in the state database that refills,
refuses without taking, hands the last tokens to exactly as many racing takers, on SQLite and PostgreSQL;
and a password guesser alternating between two hubs on one PostgreSQL meets one budget."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.auth.models import rate_buckets
from hub.auth.ratelimit import SharedRateLimiter
from tests.support.hubdb import migrated_engine
from tests.support.outpost import HubHandle, start_hub
from tests.support.postgres import Postgres


def test_a_shared_bucket_refills_refuses_without_taking_and_prunes_full_ones(state_url: str) -> None:
    engine = migrated_engine(state_url)
    now = [1_000_000]
    try:
        limiter = SharedRateLimiter(engine, "login_per_user", rate=1.0, burst=3, now_ms=lambda: now[0])
        assert [limiter.take("alice") for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limiter.take("alice") == pytest.approx(1.0)  # empty: one token a second
        assert limiter.take("bob") == 0.0  # another key, its own bucket
        now[0] += 500
        assert limiter.take("alice") == pytest.approx(0.5)  # the refusal took nothing
        now[0] += 500
        assert limiter.take("alice") == 0.0
        other = SharedRateLimiter(engine, "login_per_ip", rate=1.0, burst=3, now_ms=lambda: now[0])
        assert other.take("alice") == 0.0  # the same key under another limit
        with engine.connect() as db:
            keys = db.execute(sa.select(rate_buckets.c.key)).scalars().all()
        assert len(keys) == 3 and not any("alice" in k or "bob" in k for k in keys)  # hashes only
        now[0] += SharedRateLimiter.PRUNE_EVERY_MS  # every bucket full again: pruned on the next take
        assert limiter.take("carol") == 0.0
        with engine.connect() as db:
            left = db.execute(sa.select(rate_buckets.c.name)).scalars().all()
        assert sorted(left) == ["login_per_ip", "login_per_user"]  # carol's; the other limit prunes its own
    finally:
        engine.dispose()


def test_racing_takers_get_exactly_the_tokens_the_bucket_holds(state_url: str) -> None:
    engine = migrated_engine(state_url)
    try:
        limiter = SharedRateLimiter(engine, "login_per_ip", rate=0.001, burst=5, now_ms=lambda: 7_000)
        with ThreadPoolExecutor(16) as pool:
            waits = list(pool.map(lambda _: limiter.take("10.0.0.9"), range(24)))
        assert waits.count(0.0) == 5 and all(w > 0 for w in waits if w)
    finally:
        engine.dispose()


def _guess(hub: HubHandle) -> int:
    body = {"username": "alice", "password": "not her password"}
    return httpx.post(hub.api_url + "/api/v1/auth/login", json=body, timeout=10).status_code


@pytest.mark.integration
def test_a_guesser_alternating_between_two_hubs_meets_one_budget(tmp_path: Path) -> None:
    pg = Postgres(tmp_path / "logs")
    hubs: list[HubHandle] = []
    try:
        url = pg.create_database("outpost")
        limits = {
            "login_per_user": {"rate": 0.001, "burst": 3},
            "login_per_ip": {"rate": 1000, "burst": 1000},
        }
        extra = {"state_url": url, "auth": {"rate_limits": limits}}
        hubs = [start_hub(tmp_path, name, extra) for name in ("hub-a", "hub-b")]
        a, b = hubs
        token = next(h.token for h in hubs if (h.data_dir / "admin.token").exists())
        r = httpx.post(
            a.api_url + "/api/v1/users",
            json={"username": "alice", "password": "a long enough password"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        assert [_guess(h) for h in (a, b, a, b, a)] == [401, 401, 401, 429, 429]  # 3 tries in all, not 3 each
    finally:
        for h in hubs:
            h.stop()
        pg.stop()
