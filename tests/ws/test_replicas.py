"""Two hub `api` processes on a real nats-server and PostgreSQL: each streams every alert published on
the bus (here by the test, as the alert engine of a worker would) to its own WebSocket clients with the
same ids, so a client that drops off one replica resumes on the other with last_event_id and misses
nothing. (A process joining late replays the stream: tests/ws/test_tail.py.)"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.bus.config import NatsBusConfig
from hub.bus.factory import build_bus
from hub.identity import pki
from hub.identity.nats_auth import HUB_NATS_CN
from hub.ingest.nats_consumer import ClientTls
from tests.support.outpost import HubHandle, start_hub
from tests.support.postgres import Postgres
from tests.transport.natsd import start_nats
from tests.ws.conftest import alert_created, events_of, frames, open_stream

pytestmark = pytest.mark.e2e

_names = itertools.count(1)


@dataclass
class Replicas:
    apis: list[HubHandle]
    bus: NatsBusConfig
    tls: ClientTls


@pytest.fixture
def replicas(tmp_path: Path, postgres: Postgres) -> Iterator[Replicas]:
    ca = pki.CaPaths(tmp_path / "ca")
    pki.init_ca(ca)
    services: list[Any] = []
    try:
        nats = start_nats(tmp_path, ca, [])
        services.append(nats)
        bus = NatsBusConfig(servers=(nats.url,), server_name="localhost")
        common = {
            "role": "api",
            "state_url": postgres.create_database(f"ws{next(_names)}"),
            "bus": bus.model_dump(mode="json"),
            "ws": {"tick_s": 0.05},
        }
        apis = []
        for name in ("api-1", "api-2"):
            dest = pki.CaPaths(tmp_path / name / "pki")  # one CA for every process, as in a deployment
            dest.root.mkdir(parents=True)
            dest.cert.write_bytes(ca.cert.read_bytes())
            pki.write_private(dest.key, ca.key.read_bytes())
            apis.append(start_hub(tmp_path, name, extra=common))
            services.append(apis[-1])
        certs = tmp_path / "test-client"
        pki.write_pair(pki.issue(ca, HUB_NATS_CN), certs / "hub.pem", certs / "hub.key")
        yield Replicas(apis, bus, ClientTls(ca.cert, certs / "hub.pem", certs / "hub.key"))
    finally:
        for svc in reversed(services):
            svc.stop()


def _ws(api: HubHandle) -> str:
    return f"ws://127.0.0.1:{api.api_port}"


def _ids_of(received: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(e["id"], e["data"]["alert_id"]) for e in events_of(received)]


async def test_each_api_replica_streams_every_alert_and_a_client_resumes_on_another(
    replicas: Replicas,
) -> None:
    api1, api2 = replicas.apis
    token = api1.token  # one state database: the admin key of the first start works on every replica
    bus = build_bus(replicas.bus, replicas.tls)
    await bus.start()
    try:
        a, _ = await open_stream(_ws(api1), token, "/ws/alerts")
        b, _ = await open_stream(_ws(api2), token, "/ws/alerts")
        async with a:
            async with b:
                await bus.publish(alert_created(1, 1))
                on_a, on_b = _ids_of(await frames(a, 1, timeout=20)), _ids_of(await frames(b, 1, timeout=20))
                assert on_a == on_b and on_a[0][1] == "alert-1"  # the same event with the same id on both
            for n in (2, 3, 4):  # while b is away
                await bus.publish(alert_created(n, n))
            seen_by_a = _ids_of(await frames(a, 3, timeout=20))
            assert [alert for _, alert in seen_by_a] == ["alert-2", "alert-3", "alert-4"]
        # b comes back on the other replica with the last id it saw: exactly what it missed, same ids.
        b, _ = await open_stream(_ws(api1), token, "/ws/alerts", last_event_id=on_b[0][0])
        async with b:
            assert _ids_of(await frames(b, 3, timeout=20)) == seen_by_a
    finally:
        await bus.aclose()
