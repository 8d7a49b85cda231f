"""Pushed series scored at a running hub by the agents' detector bank: a spike after learning becomes an
`EdgeAnomaly` alert with the source's labels, a flat series raises nothing, state survives a restart,
caps and drops are counted on /metrics, and concurrent pushers have every point scored once."""

from __future__ import annotations

import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from shared.detect import snapshot
from tests.support.outpost import HubHandle, start_hub, wait_for
from tests.webhooks.conftest import LIMITS, add_key, now_ms

pytestmark = pytest.mark.integration

STEP_MS = 10_000
LEARN = 40
DETECT = {
    "max_series_per_source": 50,
    "tick_s": 0.05,
    "bank": {"default": {"warmup_points": 30, "warmup_s": 0, "seasonality": "none"}},
}


class Hub:
    """A hub that can be restarted on the same data directory and ports."""

    def __init__(self, tmp: Path, detect: dict[str, Any]) -> None:
        self._tmp = tmp
        self._extra = {"auth": {"rate_limits": LIMITS}, "detect": detect}
        self.handle = start_hub(tmp, extra=self._extra)

    def restart(self) -> None:
        self.handle.stop()
        ports = (self.handle.api_port, self.handle.grpc_port)
        self.handle = start_hub(self._tmp, extra=self._extra, ports=ports)

    def stop(self) -> None:
        self.handle.stop()


@pytest.fixture(scope="module")
def scoring(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    hub = Hub(tmp_path_factory.mktemp("scoring"), DETECT)
    try:
        yield hub
    finally:
        hub.stop()


def write(hub: HubHandle, token: str, lines: list[str]) -> None:
    r = httpx.post(
        f"{hub.api_url}/api/v2/write",
        params={"precision": "ms"},
        content="\n".join(lines),
        headers={"Authorization": f"Token {token}"},
    )
    assert r.status_code == 204, r.text


def detect_points(hub: HubHandle) -> dict[str, float]:
    """outpost_hub_detect_points_total by result."""
    text = httpx.get(f"{hub.api_url}/metrics").text
    return {
        m[1]: float(m[2])
        for m in re.finditer(r'^outpost_hub_detect_points_total\{result="(\w+)"\} (\S+)$', text, re.M)
    }


def metric(hub: HubHandle, name: str, **labels: str) -> float:
    text = httpx.get(f"{hub.api_url}/metrics").text
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    sample = f"{name}{{{inner}}}" if labels else name
    (value,) = [line.split(" ")[1] for line in text.splitlines() if line.startswith(sample + " ")]
    return float(value)


def wait_scored(hub: HubHandle, at_least: float) -> dict[str, float]:
    return wait_for(
        lambda: (p := detect_points(hub)) and p.get("scored", 0) >= at_least and p,
        what=f"{at_least} points scored",
    )


def anomaly_alerts(hub: HubHandle, agent: str, metric_name: str) -> list[dict[str, Any]]:
    return [
        a
        for a in hub.get("/api/v1/alerts", limit=1000)["alerts"]
        if a["labels"].get("agent") == agent and a["labels"].get("metric") == metric_name
    ]


def learning(measurement: str, field: str, tags: str, start_ms: int, n: int = LEARN) -> list[str]:
    values = 50 + np.random.default_rng(3).normal(0, 1, n)
    return [f"{measurement},{tags} {field}={v:.3f} {start_ms + i * STEP_MS}" for i, v in enumerate(values)]


def test_a_spike_after_learning_alerts_with_the_sources_labels_and_a_flat_series_raises_nothing(
    scoring: Hub,
) -> None:
    hub = scoring.handle
    token = add_key(hub, "telegraf-web")
    start = now_ms() - 3_600_000
    before = detect_points(hub).get("scored", 0)
    flat = [f"mem,host=web1 used=42 {start + i * STEP_MS}" for i in range(LEARN + 1)]
    write(hub, token, learning("cpu", "usage_idle", "host=web1,cpu=total", start) + flat[:LEARN])
    wait_scored(hub, before + 2 * LEARN)
    assert anomaly_alerts(hub, "push:telegraf-web", "cpu_usage_idle") == []
    spike_ms = start + LEARN * STEP_MS
    write(hub, token, [f"cpu,host=web1,cpu=total usage_idle=500 {spike_ms}", flat[LEARN]])
    (alert,) = wait_for(lambda: anomaly_alerts(hub, "push:telegraf-web", "cpu_usage_idle"), what="an alert")
    assert alert["labels"]["alertname"] == "EdgeAnomaly" and alert["status"] == "firing"
    assert alert["labels"]["host"] == "web1" and alert["labels"]["cpu"] == "total"
    assert alert["annotations"]["value"] == "500"
    assert anomaly_alerts(hub, "push:telegraf-web", "mem_used") == []


def test_detector_state_survives_a_restart_warm_so_the_first_spike_after_it_alerts(scoring: Hub) -> None:
    token = add_key(scoring.handle, "telegraf-db")
    start = now_ms() - 3_600_000
    before = detect_points(scoring.handle).get("scored", 0)
    write(scoring.handle, token, learning("disk", "busy", "host=db1", start))
    wait_scored(scoring.handle, before + LEARN)
    scoring.restart()  # SIGTERM: the job saves every bank at stop
    hub = scoring.handle
    (path,) = [p for p in (hub.data_dir / "detect").iterdir() if p.name.startswith("push_telegraf-db")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    header, arrays = snapshot.read(path)
    (group,) = [(i, g) for i, g in enumerate(header["groups"]) if g["keys"]]
    assert group[1]["keys"] == [["disk_busy", [["host", "db1"]]]]
    assert arrays[f"g{group[0]}.gate.n"].tolist() == [LEARN]
    write(hub, token, [f"disk,host=db1 busy=900 {start + LEARN * STEP_MS}"])
    (alert,) = wait_for(lambda: anomaly_alerts(hub, "push:telegraf-db", "disk_busy"), what="an alert")
    assert alert["labels"]["host"] == "db1"
    assert metric(hub, "outpost_hub_detect_series", state="learning") == 0
    assert metric(hub, "outpost_hub_detect_series", state="active") == 1


def test_many_pushers_at_once_have_every_point_scored_exactly_once(scoring: Hub) -> None:
    hub = scoring.handle
    token = add_key(hub, "fleet")
    clients, pushes, series = 8, 5, 5
    start = now_ms() - 3_600_000
    before = detect_points(hub)
    errors: list[BaseException] = []

    def push(c: int) -> None:
        try:
            for i in range(pushes):
                ts = start + i * STEP_MS
                write(hub, token, [f"load,host=h{c},core=c{s} v={i % 3} {ts}" for s in range(series)])
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sent = clients * pushes * series
    after = wait_scored(hub, before.get("scored", 0) + sent)
    assert after["scored"] - before.get("scored", 0) == sent
    for result in ("late", "duplicate", "capped", "dropped_queue"):
        assert after[result] == before.get(result, 0), result


def test_series_past_the_per_source_cap_are_dropped_and_counted(scoring: Hub) -> None:
    hub = scoring.handle
    token = add_key(hub, "wide")
    before = detect_points(hub)
    t = now_ms() - 60_000
    write(hub, token, [f"wide,n=s{i} v=1 {t}" for i in range(60)])
    after = wait_for(
        lambda: (p := detect_points(hub)) and p["capped"] > before["capped"] and p, what="capped"
    )
    assert after["capped"] - before["capped"] == 10
    assert after["scored"] - before["scored"] == 50


@pytest.mark.slow  # a hub of its own (7 s under load); the unit tests cover the queue's logic
def test_a_full_scoring_queue_drops_pushed_points_and_counts_them(tmp_path: Path) -> None:
    # The scorer ticks once a minute here, so the queue fills from two pushes.
    hub = Hub(tmp_path, {"tick_s": 60, "max_queued_points": 10})
    try:
        token = add_key(hub.handle, "bulk")
        t = now_ms() - 60_000
        write(hub.handle, token, [f"bulk,n=s{i} v=1 {t}" for i in range(8)])
        write(hub.handle, token, [f"bulk,n=s{i} v=1 {t}" for i in range(5)])
        dropped = wait_for(lambda: detect_points(hub.handle)["dropped_queue"], what="dropped points")
        assert dropped == 5
        assert metric(hub.handle, "outpost_hub_detect_queued_points") == 8
    finally:
        hub.stop()
