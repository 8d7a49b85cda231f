"""One hub process for every pushed-data test (rate limits opened up), and helpers to read it back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.outpost import HubHandle, start_hub

WRITE_BURST = 100
LIMITS = {
    "api_per_ip": {"rate": 100_000, "burst": 100_000},
    "read_per_principal": {"rate": 100_000, "burst": 100_000},
    # Low enough that a test can exhaust one key's bucket, high enough for every other test's pushes.
    "write_per_principal": {"rate": 5, "burst": WRITE_BURST},
}

SENTRY_SECRET = "sentry-client-secret-for-tests"
# One source's bucket is small enough for a test to exhaust, and holds every other test's deliveries.
GENERIC_BURST = 60
GENERIC = {
    "per_source": {"rate": 1, "burst": GENERIC_BURST},
    "per_ip": {"rate": 100_000, "burst": 100_000},
    "max_body_bytes": 100_000,
}


@pytest.fixture(scope="package")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubHandle]:
    extra = {
        "auth": {"rate_limits": LIMITS},
        "webhooks": {"sentry": {"client_secret": SENTRY_SECRET}, "generic": GENERIC},
    }
    h = start_hub(tmp_path_factory.mktemp("push"), extra=extra)
    try:
        yield h
    finally:
        h.stop()


def add_key(hub: HubHandle, name: str, role: str = "operator", **extra: Any) -> str:
    """Creates an API key as the admin and returns its secret."""
    r = httpx.post(
        f"{hub.api_url}/api/v1/keys",
        headers={"Authorization": f"Bearer {hub.token}"},
        json={"name": name, "role": role, **extra},
    )
    assert r.status_code == 201, r.text
    secret: str = r.json()["secret"]
    return secret


def points(hub: HubHandle, metric: str, **labels: str) -> dict[str, list[list[float]]]:
    """Every stored series of `metric` (matching `labels`) by its agent label, as [ts, value] pairs."""
    match = [f"{k}={v}" for k, v in labels.items()]
    body = hub.get("/api/v1/query", metric=metric, match=match, start="-1d", end="now")
    return {s["labels"]["agent"]: s["points"] for s in body["series"]}


def now_ms() -> int:
    return int(time.time() * 1000)
