"""Delivery ids shared by every hub process on one state database: a signed webhook replayed to another
`api` process is refused there too, on SQLite and PostgreSQL, and many takers of one id at once get
exactly one yes."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.ingest.sources.deliveries import PRUNE_EVERY_MS, DeliveryLedger
from hub.ingest.sources.models import webhook_deliveries
from tests.support.hubdb import migrated_engine
from tests.support.outpost import HubHandle, start_hub
from tests.support.postgres import Postgres
from tests.webhooks.test_sentry import issue

SECRET = "sentry-shared-secret"


def test_an_id_is_taken_once_per_window_per_scope_and_forgotten_on_request(state_url: str) -> None:
    engine = migrated_engine(state_url)
    try:
        ledger = DeliveryLedger(engine)
        assert ledger.first_time("sentry", "r1", 1000, 0)
        assert not ledger.first_time("sentry", "r1", 1000, 999)  # a replay inside the window
        assert ledger.first_time("generic:a", "r1", 1000, 999)  # another scope: another id
        assert ledger.first_time("sentry", "r1", 1000, 1000)  # the window passed: taken again
        ledger.forget("sentry", "r1")
        assert ledger.first_time("sentry", "r1", 1000, 1001)  # released after a 503
        with engine.connect() as db:
            keys = db.execute(sa.select(webhook_deliveries.c.key)).scalars().all()
        assert len(keys) == 2 and all(len(k) == 64 and "r1" not in k for k in keys)  # hashes only
        assert ledger.prune(now_ms=10_000) == 2
        assert ledger.first_time("sentry", "r2", 1000, PRUNE_EVERY_MS + 1)
    finally:
        engine.dispose()


def test_many_takers_of_one_id_at_once_get_exactly_one_yes(state_url: str) -> None:
    engine = migrated_engine(state_url)
    try:
        ledger = DeliveryLedger(engine)
        with ThreadPoolExecutor(16) as pool:
            for n in range(10):
                take = functools.partial(ledger.first_time, "sentry", f"id-{n}", 60_000)
                answers = list(pool.map(take, [5] * 16))
                assert answers.count(True) == 1, (n, answers)
    finally:
        engine.dispose()


def _deliver(hub: HubHandle, request_id: str) -> int:
    body = json.dumps(issue("created", "9001")).encode()
    headers = {
        "Content-Type": "application/json",
        "Sentry-Hook-Resource": "issue",
        "Sentry-Hook-Timestamp": str(int(time.time())),
        "Sentry-Hook-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
        "Request-ID": request_id,
    }
    return httpx.post(f"{hub.api_url}/webhooks/sentry", content=body, headers=headers, timeout=10).status_code


@pytest.mark.integration
def test_a_sentry_delivery_replayed_to_another_hub_on_the_database_is_refused(tmp_path: Path) -> None:
    pg = Postgres(tmp_path / "logs")
    hubs: list[HubHandle] = []
    try:
        url = pg.create_database("outpost")
        extra = {"state_url": url, "webhooks": {"sentry": {"client_secret": SECRET}}}
        hubs = [start_hub(tmp_path, name, extra) for name in ("hub-a", "hub-b")]
        a, b = hubs
        # a holds the alert engine (b would hand alerts to it over a bus these two do not share)
        for request_id in ("req-1", "req-2"):
            assert _deliver(a, request_id) == 204
            assert _deliver(b, request_id) == 401  # the replay reaches the other process
        assert _deliver(a, "req-1") == 401
        metrics = httpx.get(b.api_url + "/metrics", timeout=10).text
        assert 'outpost_hub_ingest_rejected_total{reason="replayed",transport="sentry"} 2.0' in metrics
    finally:
        for h in hubs:
            h.stop()
        pg.stop()
