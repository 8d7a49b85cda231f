"""Bus fixtures: a real nats-server (JetStream, mTLS) the hub's bus may publish to, and one factory
that builds either implementation so conformance tests run the same behaviour over both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.bus.base import Bus
from hub.bus.config import BusConfig, MemoryBusConfig, NatsBusConfig
from hub.bus.factory import BUSES, build_bus
from hub.identity import pki
from hub.identity.nats_auth import HUB_NATS_CN, NatsServerFiles, render_config
from hub.ingest.nats_consumer import ClientTls
from tests.support.procs import Service, free_port, start_service
from tests.transport.natsd import nats_binary

BUS_SUBJECTS = "outpost.bus.>"


@dataclass
class BusNats:
    """nats-server with the hub's own rendered config (which lets the hub publish the bus subjects)."""

    root: Path
    port: int
    conf: Path
    tls: ClientTls
    service: Service | None = None

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Starts (or restarts) the server on the same port and JetStream store dir."""
        self.service = start_service(
            "nats",
            [nats_binary(), "-c", str(self.conf)],
            self.root / "logs",
            port=self.port,
            ready_log=r"Server is ready",
            timeout=20,
        )

    def kill(self) -> None:
        """SIGKILL by PID: no shutdown, no final flush."""
        if self.service is not None:
            self.service.kill()

    def config(self, **overrides: Any) -> NatsBusConfig:
        base: dict[str, Any] = {"servers": (self.url,), "server_name": "localhost", "ack_wait_s": 2.0}
        return NatsBusConfig(**{**base, **overrides})


def start_bus_nats(root: Path) -> BusNats:
    ca = pki.CaPaths(root / "ca")
    pki.init_ca(ca)
    d = root / "nats"
    server = pki.issue(ca, "nats", server_names=("localhost", "127.0.0.1"))
    pki.write_pair(server, d / "server.pem", d / "server.key")
    pki.write_pair(pki.issue(ca, HUB_NATS_CN), d / "hub.pem", d / "hub.key")
    port = free_port()
    files = NatsServerFiles(d / "server.pem", d / "server.key", ca.cert)
    path = d / "nats.conf"
    path.write_text(render_config(f"127.0.0.1:{port}", d / "js", files, []))  # the hub's own rendering
    srv = BusNats(root, port, path, ClientTls(ca.cert, d / "hub.pem", d / "hub.key"))
    srv.start()
    return srv


@pytest.fixture
def bus_nats(tmp_path: Path) -> Iterator[BusNats]:
    srv = start_bus_nats(tmp_path)
    try:
        yield srv
    finally:
        srv.kill()


MakeBus = Callable[..., Bus]


@pytest.fixture(params=sorted(BUSES))
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    """`make_bus(**delivery)` builds (through `build_bus`) a bus of each registered kind; NATS buses
    share one server and stream, like hub processes do. Every bus is closed afterwards.

    `max_deliver` (default 3) means the same for both: the memory bus gets `retries = max_deliver - 1`.
    """
    built: list[Bus] = []
    srv: BusNats | None = request.getfixturevalue("bus_nats") if request.param == "nats" else None

    def make(**delivery: Any) -> Bus:
        config: BusConfig
        max_deliver = delivery.pop("max_deliver", 3)
        if request.param == "memory":
            config = MemoryBusConfig(retries=max_deliver - 1, retry_backoff_s=0.02, **delivery)
        else:
            assert srv is not None, f"no fixture for bus kind {request.param}: add one here"
            config = srv.config(max_deliver=max_deliver, retry_backoff_s=0.05, **delivery)
        bus = build_bus(config, srv.tls if srv else None)
        built.append(bus)
        return bus

    try:
        yield make
    finally:
        await asyncio.gather(*(b.aclose() for b in built))


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Waits (yielding to the loop) until `cond()` holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


async def settle(seconds: float = 0.3) -> None:
    """Gives any extra (duplicate) delivery time to show up before asserting exact counts."""
    await asyncio.sleep(seconds)
