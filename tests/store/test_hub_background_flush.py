"""A real hub whose store flushes its head in the background many times under concurrent pushers and
readers, then is SIGKILLed (a flush may be running) and restarted: every acknowledged point once."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.outpost import HubHandle, start_hub
from tests.webhooks.conftest import add_key, now_ms

pytestmark = pytest.mark.integration

OPEN = {"rate": 1_000_000, "burst": 1_000_000}
LIMITS = {k: OPEN for k in ("api_per_ip", "read_per_principal", "write_per_principal")}
HOSTS = 20
LINES = 250  # per request: 20 hosts x 12 times, 2 fields each
MAX_REQUESTS = 400
KILL_AFTER = 60  # acknowledged requests before the kill
HEAD = 2_000  # points: a flush every 4 requests


def body(request: int, t0: int) -> str:
    """Request `request`'s lines: its own 1 s slice of time, so every point is new."""
    lines = []
    for k in range(LINES):
        host, step = k % HOSTS, k // HOSTS
        ts = t0 + request * 1000 + step
        lines.append(f"sys,host=h{host} load={request + step / 100},procs={k}i {ts}")
    return "\n".join(lines)


def stored(hub: HubHandle, metric: str) -> dict[str, list[float]]:
    answer = hub.get("/api/v1/query", metric=metric, start="-1d", end="now")
    return {s["labels"]["host"]: [p[0] for p in s["points"]] for s in answer["series"]}


def test_concurrent_pushes_and_queries_across_background_flushes_survive_a_sigkill(tmp_path: Path) -> None:
    extra = {"store": {"kind": "embedded", "head_max_points": HEAD}, "auth": {"rate_limits": LIMITS}}
    hub = start_hub(tmp_path, extra=extra)
    t0 = now_ms() - 3_600_000
    acked: set[int] = set()
    failed: list[str] = []
    done = threading.Event()
    try:
        token = add_key(hub, "telegraf")

        def push(i: int) -> None:
            if done.is_set():
                return
            try:
                r = httpx.post(
                    f"{hub.api_url}/api/v2/write",
                    params={"org": "noc", "bucket": "b", "precision": "ms"},
                    content=body(i, t0),
                    headers={"Authorization": f"Token {token}"},
                    timeout=60,
                )
            except httpx.TransportError:  # the kill
                return
            if r.status_code == 204:
                acked.add(i)

        def query() -> None:
            while not done.is_set():
                try:
                    r = httpx.get(
                        f"{hub.api_url}/api/v1/query",
                        params={"metric": "sys_load", "start": "-1d", "end": "now"},
                        headers={"Authorization": f"Bearer {hub.token}"},
                        timeout=60,
                    )
                except httpx.TransportError:
                    return
                if r.status_code != 200:
                    failed.append(f"{r.status_code} {r.text[:200]}")
                    return
                for series in r.json()["series"]:
                    ts = [p[0] for p in series["points"]]
                    if ts != sorted(set(ts)):
                        failed.append("a point read twice or out of order")

        readers = [threading.Thread(target=query) for _ in range(3)]
        for t in readers:
            t.start()
        with ThreadPoolExecutor(12) as pool:
            for _ in pool.map(push, range(MAX_REQUESTS)):
                if len(acked) >= KILL_AFTER and not done.is_set():
                    flushes = re.search(
                        r"^outpost_hub_store_flushes_total (\S+)$",
                        httpx.get(hub.api_url + "/metrics").text,
                        re.M,
                    )
                    assert flushes is not None and float(flushes.group(1)) >= 5  # a flush every 4 requests
                    hub.kill()  # SIGKILL while 12 clients write: a background flush may be mid-transaction
                    done.set()
        for t in readers:
            t.join(60)
        assert done.is_set() and not failed
    finally:
        hub.kill()
    again = start_hub(tmp_path, extra=extra)
    try:
        for metric in ("sys_load", "sys_procs"):
            per_host = stored(again, metric)
            assert sorted(per_host) == sorted(f"h{n}" for n in range(HOSTS))
            for n in range(HOSTS):
                steps = [s for s in range(-(-LINES // HOSTS)) if s * HOSTS + n < LINES]
                got = per_host[f"h{n}"]
                assert got == sorted(set(got)), (metric, n)  # nothing twice
                requests = {(t - t0) // 1000 for t in got}
                assert requests >= acked  # every acknowledged request, each whole; others whole or absent
                for r in requests:
                    assert [t for t in got if (t - t0) // 1000 == r] == [t0 + r * 1000 + s for s in steps]
    finally:
        again.stop()
