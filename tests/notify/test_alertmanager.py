"""The Alertmanager receiver against a real Prometheus Alertmanager, whose own webhook then pages.

Proves a NOC's existing routing works: alerts the hub posts show up in Alertmanager with the right
labels, a resolve clears them, and Alertmanager's route delivers both to its webhook (the recorder).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.notify.config import NotifyConfig
from hub.notify.dispatcher import Dispatcher
from hub.notify.model import AlertView, Notification
from tests.notify.alertmanager import alertmanager_binary, start_alertmanager
from tests.notify.recorder import Recorder
from tests.support.procs import Service

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        alertmanager_binary() is None, reason="prometheus-alertmanager not installed (make apt)"
    ),
]

TOKEN = "am-bearer-4c1d"


@pytest.fixture(scope="module")
def noc_webhook() -> Iterator[Recorder]:
    rec = Recorder().start()
    try:
        yield rec
    finally:
        rec.stop()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory, noc_webhook: Recorder) -> Iterator[Service]:
    svc = start_alertmanager(tmp_path_factory.mktemp("alertmanager"), noc_webhook.url("/noc"))
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
async def dispatcher(engine: sa.Engine, alertmanager: Service) -> AsyncIterator[Dispatcher]:
    cfg = NotifyConfig.model_validate(
        {
            "receivers": [
                {
                    "kind": "alertmanager",
                    "name": "noc-am",
                    "url": f"http://127.0.0.1:{alertmanager.port}",
                    "resend_interval_s": 60,
                    "bearer_token": TOKEN,
                    "backoff_base_s": 0.05,
                    "backoff_cap_s": 0.1,
                }
            ],
            "poll_interval_s": 0.2,
        }
    )
    d = Dispatcher(engine, cfg, owner="test-hub")
    await d.start()
    try:
        yield d
    finally:
        await d.aclose()


def _alert(device: str, status: str, starts_ms: int, ends_ms: int | None = None) -> AlertView:
    return AlertView(
        id=f"a-{device}",
        fingerprint=f"fp-{device}",
        status=status,  # type: ignore[arg-type]
        severity="critical",
        labels={"alertname": "LinkDown", "device": device, "dc": "dc1"},  # type: ignore[arg-type]
        annotations={"summary": f"uplink of {device} is down"},  # type: ignore[arg-type]
        starts_at_ms=starts_ms,
        ends_at_ms=ends_ms,
        generator_url=f"http://hub.example/alerts/{device}",
    )


def _group(nid: str, status: str, starts_ms: int, ends_ms: int | None = None) -> Notification:
    return Notification.of(
        nid,
        "noc-am",
        '{}:{alertname="LinkDown"}',
        {"alertname": "LinkDown"},
        tuple(_alert(d, status, starts_ms, ends_ms) for d in ("sw1", "sw2")),
        int(time.time() * 1000),
    )


async def _am_alerts(am: Service) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        resp = await client.get(f"http://127.0.0.1:{am.port}/api/v2/alerts")
        resp.raise_for_status()
        return sorted(resp.json(), key=lambda a: a["labels"]["device"])


async def _until(fn: Any, cond: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if cond(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met; last value: {value!r}")
        await asyncio.sleep(0.05)


async def _pages_covering(rec: Recorder, status: str, devices: set[str]) -> list[dict]:  # type: ignore[type-arg]
    """Alertmanager's pages of `status` until together they name every device in `devices`."""
    for count in range(1, 6):
        pages = [r.json() for r in await rec.until(count, "/noc")]
        pages = [p for p in pages if p["status"] == status]
        if {a["labels"]["device"] for p in pages for a in p["alerts"]} >= devices:
            return pages
    raise AssertionError(f"no {status} pages naming {sorted(devices)}")


async def test_firing_alerts_reach_alertmanager_and_its_route_then_a_resolve_clears_them(
    dispatcher: Dispatcher, alertmanager: Service, noc_webhook: Recorder
) -> None:
    starts = int(time.time() * 1000) - 30_000
    assert dispatcher.submit(_group("linkdown-1", "firing", starts))

    alerts = await _until(lambda: _am_alerts(alertmanager), lambda v: len(v) == 2)
    assert [a["labels"] for a in alerts] == [
        {"alertname": "LinkDown", "device": d, "dc": "dc1", "severity": "critical"} for d in ("sw1", "sw2")
    ]
    assert [a["annotations"] for a in alerts] == [
        {"summary": f"uplink of {d} is down"} for d in ("sw1", "sw2")
    ]
    assert {a["status"]["state"] for a in alerts} == {"active"}
    assert [a["generatorURL"] for a in alerts] == [f"http://hub.example/alerts/{d}" for d in ("sw1", "sw2")]
    # endsAt is 4 x the resend interval ahead (Prometheus' rule), so AM resolves them if the hub goes away.
    ends_s = httpx_time(alerts[0]["endsAt"])
    assert 235 < ends_s - time.time() <= 241

    # Alertmanager may flush its group before the second alert of one POST joined it (its group_wait
    # races its own insert), so its first page can hold one alert and the next one both.
    firing = await _pages_covering(noc_webhook, "firing", {"sw1", "sw2"})
    assert {(p["status"], p["receiver"], str(p["groupLabels"])) for p in firing} == {
        ("firing", "noc", str({"alertname": "LinkDown"}))
    }

    ended = int(time.time() * 1000)
    assert dispatcher.submit(_group("linkdown-1-resolved", "resolved", starts, ended))
    await _until(lambda: _am_alerts(alertmanager), lambda v: v == [])
    resolved = await _pages_covering(noc_webhook, "resolved", {"sw1", "sw2"})
    assert all(a["status"] == "resolved" for p in resolved for a in p["alerts"])
    assert dispatcher.stats.snapshot().sent == {"noc-am": 2}


async def test_an_alert_alertmanager_refuses_is_dead_lettered_at_once(dispatcher: Dispatcher) -> None:
    bare = AlertView("a-x", "fp-x", "firing", "", (), (), int(time.time() * 1000))
    n = Notification.of("no-labels", "noc-am", "{}", {}, (bare,), int(time.time() * 1000))
    assert dispatcher.submit(n)
    await _until(dispatcher.dead_letters, lambda v: len(v) == 1)
    (dead,) = await dispatcher.dead_letters()
    assert (dead.id, dead.reason, dead.attempts) == ("no-labels", "permanent", 1)
    assert "answered 400" in dead.last_error and "at least one label pair required" in dead.last_error
    assert TOKEN not in dead.last_error


async def test_alerts_go_in_batches_of_at_most_100_with_the_bearer_token(
    engine: sa.Engine, recorder: Recorder
) -> None:
    cfg = NotifyConfig.model_validate(
        {
            "receivers": [
                {"kind": "alertmanager", "name": "am", "url": recorder.url(""), "bearer_token": TOKEN}
            ],
        }
    )
    d = Dispatcher(engine, cfg, owner="test-hub")
    await d.start()
    try:
        now = int(time.time() * 1000)
        alerts = tuple(_alert(f"sw{i:03d}", "firing", now) for i in range(250))
        assert d.submit(Notification.of("big", "am", "{}", {}, alerts, now))
        reqs = await recorder.until(3, "/api/v2/alerts")
    finally:
        await d.aclose()
    assert [len(r.json()) for r in reqs] == [100, 100, 50]
    assert {r.headers["authorization"] for r in reqs} == {f"Bearer {TOKEN}"}
    assert [a["labels"]["device"] for r in reqs for a in r.json()] == [f"sw{i:03d}" for i in range(250)]
    assert "endsAt" not in reqs[0].json()[0]  # no resend_interval_s: Alertmanager's resolve_timeout applies


def httpx_time(rfc3339: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC time as Alertmanager writes it."""
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
