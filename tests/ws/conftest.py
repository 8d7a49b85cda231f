"""WebSocket stream fixtures: a hub running in the test's event loop (real uvicorn on 127.0.0.1, real
memory bus, real state database) and a real `websockets` client speaking the stream protocol; the bus
fixtures (a real nats-server, both bus kinds) are shared with tests/bus."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from hub.bus.messages import AlertsChanged, AnomalyReported, DeviceEvent
from hub.config import HubConfig
from hub.pipeline import ADMIN_TOKEN_FILE, Hub
from tests.bus.conftest import bus_nats, make_bus
from tests.support.procs import free_port

__all__ = ["bus_nats", "make_bus"]

# Fast enough for tests: short ticks, token re-checks every second, a quick auth deadline.
FAST_WS = {"tick_s": 0.05, "recheck_s": 1, "auth_timeout_s": 1, "history": 1000, "history_s": 60}


@dataclass
class LiveHub:
    hub: Hub
    token: str

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.hub.api_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.hub.api_port}"


async def start_live_hub(root: Path, **ws: Any) -> LiveHub:
    config = HubConfig.model_validate(
        {
            "data_dir": str(root),
            "api": {"listen": f"127.0.0.1:{free_port()}"},
            "grpc": {"listen": f"127.0.0.1:{free_port()}"},
            "alerts": {"timers": {"group_wait_s": 0, "group_interval_s": 0.5, "repeat_interval_s": 3600}},
            "ws": {**FAST_WS, **ws},
        }
    )
    hub = Hub(config)
    try:
        await hub.start()
    except BaseException:
        await hub.aclose()
        raise
    return LiveHub(hub, (root / ADMIN_TOKEN_FILE).read_text().strip())


@pytest.fixture
async def live_hub(tmp_path: Path) -> AsyncIterator[LiveHub]:
    h = await start_live_hub(tmp_path / "hub")
    try:
        yield h
    finally:
        await h.hub.aclose()


async def open_stream(
    url: str,
    token: str,
    path: str = "/ws",
    *,
    topics: list[str] | None = None,
    filters: dict[str, Any] | None = None,
    last_event_id: int | None = None,
    via_subprotocol: bool = False,
    **kwargs: Any,
) -> tuple[ClientConnection, dict[str, Any]]:
    """A subscribed stream and the hub's `subscribed` answer (raises if the hub closed it instead)."""
    if via_subprotocol:
        protocols = [Subprotocol("outpost.v1"), Subprotocol(f"bearer.{token}")]
        ws = await connect(url + path, subprotocols=protocols, **kwargs)
    else:
        ws = await connect(url + path, **kwargs)
        await ws.send(json.dumps({"type": "auth", "token": token}))
    sub: dict[str, Any] = {"type": "subscribe"}
    if topics is not None:
        sub["topics"] = topics
    if filters is not None:
        sub["filters"] = filters
    if last_event_id is not None:
        sub["last_event_id"] = last_event_id
    await ws.send(json.dumps(sub))
    answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert answer["type"] == "subscribed", answer
    return ws, answer


async def frames(ws: ClientConnection, until_events: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Frames received until they carry `until_events` events in all (fails after `timeout`)."""
    out: list[dict[str, Any]] = []
    n = 0
    async with asyncio.timeout(timeout):
        while n < until_events:
            frame = json.loads(await ws.recv())
            out.append(frame)
            n += len(frame.get("events", ()))
    return out


def events_of(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for f in received for e in f.get("events", ())]


async def closed_with(ws: ClientConnection, timeout: float = 10.0) -> tuple[int, str]:
    """Reads until the hub closes the stream; its close code and reason."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "the hub sent no close frame"
        return exc.rcvd.code, exc.rcvd.reason
    raise AssertionError("unreachable")


async def scrape(live: LiveHub, line: str, timeout: float = 10.0) -> str:
    """The hub's /metrics page once it shows `line` (fails after `timeout`)."""
    async with httpx.AsyncClient(base_url=live.http) as c, asyncio.timeout(timeout):
        while line not in (text := (await c.get("/metrics")).text):
            await asyncio.sleep(0.05)
    return text


def anomaly(n: int, severity: str = "warning", device: str = "sw1") -> AnomalyReported:
    return AnomalyReported.create(
        agent="dc1/edge1",
        device=device,
        metric="if_in_octets",
        labels={"ifName": f"eth{n % 4}"},
        ts_ms=1_800_000_000_000 + n,
        score=0.9,
        severity=severity,
        phase="onset",
        value=float(n),
    )


def device_event(n: int, message: str) -> DeviceEvent:
    return DeviceEvent.create(
        agent="dc1/edge1",
        device="sw1",
        kind="syslog",
        severity="info",
        source="syslog",
        message=message,
        attributes={},
        ts_ms=1_800_000_000_000 + n,
    )


def alert_created(n: int, ts_ms: int) -> AlertsChanged:
    """Alert `alert-{n}` created, firing and critical: a step of one alert."""
    (msg,) = AlertsChanged.of([(f"alert-{n}", f"f{n}", "firing", "critical", "created")], ts_ms)
    return msg
