"""Each role builds its components in the order the hub starts them (and stops them in reverse)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import HubConfig
from hub.db.locks import RunOnce
from hub.pipeline import Hub

pytestmark = pytest.mark.unit

_SCALE = {
    "state_url": "postgresql+psycopg://outpost@127.0.0.1:1/outpost",
    "bus": {"kind": "nats", "servers": ["tls://127.0.0.1:4222"]},
}


def _names(hub: Hub) -> list[str]:
    return [c.name for c in hub.components]


def test_role_all_runs_everything_with_the_engine_subscribed_before_the_bus_and_intake_last(
    tmp_path: Path,
) -> None:
    hub = Hub(HubConfig(data_dir=tmp_path))
    assert _names(hub) == [
        "pki",
        "state database",
        "state database checkpoints",
        "revocations",
        "admin token",
        "store",
        "notify",
        "alerts (run once)",
        "push scoring (run once)",
        "semantic search",
        "bus",
        "api",
        "websockets",
        "log template counts",
        "log intake",
        "grpc ingest",
        "retention (run once)",
        "log retention (run once)",
        "forecast (run once)",
    ]
    assert hub.alerts is not None and [type(j) for j in hub.jobs] == [RunOnce] * 5


def test_role_api_serves_the_api_without_engine_ingest_or_notify(tmp_path: Path) -> None:
    hub = Hub(HubConfig(data_dir=tmp_path, role="api", **_SCALE))  # type: ignore[arg-type]
    assert _names(hub) == [
        "pki",
        "state database",
        "admin token",
        "store",
        "semantic search",
        "bus",
        "api",
        "websockets",
    ]
    assert hub.semantic is not None  # its index filled by the resync: no incident consumer here
    assert (hub.alerts, hub.dispatcher, hub.jobs) == (None, None, [])


def test_role_worker_ingests_notifies_and_stands_by_for_the_run_once_jobs(tmp_path: Path) -> None:
    cfg = {**_SCALE, "nats": {"enabled": True}, "enroll": {"listen": "127.0.0.1:4318"}}
    hub = Hub(HubConfig(data_dir=tmp_path, role="worker", **cfg))  # type: ignore[arg-type]
    assert _names(hub) == [
        "pki",
        "state database",
        "revocations",
        "store",
        "notify",
        "alerts (run once)",
        "push scoring (run once)",
        "bus",
        "health and metrics",
        "log template counts",
        "log intake",
        "grpc ingest",
        "enrollment",
        "nats ingest",
        "retention (run once)",
        "log retention (run once)",
        "forecast (run once)",
    ]
    assert [j.name for j in hub.jobs] == [
        "alerts (run once)",
        "push scoring (run once)",
        "retention (run once)",
        "log retention (run once)",
        "forecast (run once)",
    ]
