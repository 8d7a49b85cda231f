"""Two hub processes on one PostgreSQL and one nats-server bus take pushes at once: exactly one of them
runs the push scoring job (its lock), and every pushed point is scored once across both."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import httpx
import pytest

from hub.identity import pki
from tests.support.outpost import HubHandle, start_hub, wait_for
from tests.support.postgres import Postgres
from tests.transport.natsd import start_nats
from tests.webhooks.conftest import LIMITS, add_key, now_ms

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # PostgreSQL, nats-server and two hubs: ~25 s


def _points(hub: HubHandle) -> dict[str, float]:
    text = httpx.get(f"{hub.api_url}/metrics").text
    pattern = r'^outpost_hub_detect_points_total\{result="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}


def _sources(hub: HubHandle) -> float:
    text = httpx.get(f"{hub.api_url}/metrics").text
    (value,) = re.findall(r"^outpost_hub_detect_sources (\S+)$", text, re.M)
    return float(value)


def test_two_hubs_on_one_nats_bus_score_each_pushed_point_once(tmp_path: Path) -> None:
    pg = Postgres(tmp_path / "logs")
    services: list[object] = []
    try:
        url = pg.create_database("outpost")
        ca = pki.CaPaths(tmp_path / "hub-a" / "pki")
        pki.init_ca(ca)  # one CA for both hubs and nats-server
        (tmp_path / "hub-b").mkdir()
        (tmp_path / "hub-b" / "pki").symlink_to(ca.root, target_is_directory=True)
        nats = start_nats(tmp_path, ca, [])
        services.append(nats)
        extra = {
            "state_url": url,
            "bus": {"kind": "nats", "servers": [nats.url], "server_name": "localhost"},
            "auth": {"rate_limits": LIMITS},
            "detect": {"tick_s": 0.05},
        }
        hubs = []
        for name in ("hub-a", "hub-b"):
            hubs.append(start_hub(tmp_path, name, extra=extra))
            services.append(hubs[-1])
        (hubs[1].data_dir / "admin.token").write_text(hubs[0].token)  # the admin key is shared state
        token = add_key(hubs[0], "telegraf")
        start = now_ms() - 3_600_000
        pushes, series = 20, 10
        errors: list[BaseException] = []

        def push(h: int) -> None:  # each hub gets its own hosts, in time order
            try:
                with httpx.Client(headers={"Authorization": f"Token {token}"}) as c:
                    for i in range(pushes):
                        body = "\n".join(
                            f"cpu,host=h{h}-{s} idle={i % 5} {start + i * 10_000}" for s in range(series)
                        )
                        r = c.post(
                            f"{hubs[h].api_url}/api/v2/write", params={"precision": "ms"}, content=body
                        )
                        assert r.status_code == 204, r.text
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(h,)) for h in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        sent = 2 * pushes * series
        wait_for(lambda: sum(_points(h).get("scored", 0) for h in hubs) >= sent, what="every point scored")
        scored = [_points(h) for h in hubs]
        assert sum(p["scored"] for p in scored) == sent
        assert sorted(p["scored"] for p in scored) == [0, sent]  # one leader scores everything
        assert all(p["late"] == 0 and p["duplicate"] == 0 for p in scored)
        assert sorted(_sources(h) for h in hubs) == [0, 1]
    finally:
        for svc in reversed(services):
            svc.stop()  # type: ignore[attr-defined]
        pg.stop()
