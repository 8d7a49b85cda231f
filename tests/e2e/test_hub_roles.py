"""The hub as one `api` and two `worker` processes on a real nats-server (bus and ingest), a real
PostgreSQL (shared state, ledger, alerts) and a real InfluxDB 1.6: an alert raised in a worker is served
and acknowledged through the api, a SIGKILLed worker loses no point and the standby takes the alert engine
over, and a batch that reaches the other worker again is stored once."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from agent.transport.grpc import GrpcTransport
from agent.transport.nats import NatsTransport
from hub.identity import pki
from shared import codec
from shared.model import Batch, Event, SeriesKey, SeriesPoints, Severity
from tests.support.influxd import start_influxd
from tests.support.outpost import HubHandle, start_hub, wait_for
from tests.support.postgres import Postgres
from tests.support.procs import Service
from tests.transport.natsd import NatsServer, start_nats

pytestmark = pytest.mark.e2e

AGENT = "dc1/edge1"
T0 = 1_800_000_000_000
POINTS = 10  # per batch
FAST = {"group_wait_s": 0, "group_interval_s": 0.5, "repeat_interval_s": 3600}


def _envelope(seq: int, trap: str | None = None) -> bytes:
    """Batch `seq`: 10 points of `temp` (timestamps unique to the batch) and one event."""
    ts = T0 + seq * 60_000 + np.arange(POINTS, dtype=np.int64) * 1000
    event = (
        Event.of(int(ts[0]), "snmp.trap", Severity.WARNING, "sw1", trap, {"ifIndex": "3"})
        if trap
        else Event.of(int(ts[0]), "syslog", Severity.INFO, "sw1", f"line {seq}")
    )
    series = SeriesPoints(SeriesKey.of("temp", {"device": "sw1"}), ts, np.full(POINTS, float(seq)))
    return codec.encode(Batch(7, seq, (series,), (event,)))


class LateReplay(NatsTransport):
    """The same agent re-sending a batch after JetStream's dedup window (a spool replay), so the stream
    takes it again and whichever worker is left gets a batch another worker already stored."""

    def msg_id(self, batch_id: str) -> str:
        return f"{self.subject}:{batch_id}:replayed"


@dataclass
class Cluster:
    api: HubHandle
    workers: dict[str, HubHandle]
    nats: NatsServer
    influx_url: str
    database: str
    certs: Path
    ca: pki.CaPaths

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api.api_url, headers={"Authorization": f"Bearer {self.api.token}"}, timeout=15
        )

    def transport(self, cls: type[NatsTransport] = NatsTransport) -> NatsTransport:
        return cls(
            (self.nats.url,),
            "outpost.ingest",
            ca_file=self.ca.cert,
            cert_file=self.certs / "edge1.pem",
            key_file=self.certs / "edge1.key",
            server_name="localhost",
            timeout_s=5,
        )

    def count_points(self) -> int:
        r = httpx.post(
            f"{self.influx_url}/query", data={"db": self.database, "q": 'SELECT COUNT("value") FROM "temp"'}
        )
        r.raise_for_status()
        series = r.json()["results"][0].get("series", [])
        return int(series[0]["values"][0][1]) if series else 0

    def leader(self) -> str:
        """The worker whose log says it took the alerts lock last (and that is still running)."""
        for name, h in self.workers.items():
            if h.service.proc.poll() is None and "alerts: runs in this process" in h.service.log():
                return name
        return ""


def _start_influxd(root: Path) -> tuple[Service, str]:
    svc = start_influxd(root)
    return svc, f"http://127.0.0.1:{svc.port}"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    services: list[Any] = []
    try:
        pg = Postgres(tmp_path / "logs")
        services.append(pg)
        state_url = pg.create_database("outpost")
        influxd, influx_url = _start_influxd(tmp_path)
        services.append(influxd)
        httpx.post(f"{influx_url}/query", data={"q": 'CREATE DATABASE "outpost"'}).raise_for_status()
        ca = pki.CaPaths(tmp_path / "ca")
        pki.init_ca(ca)
        names = ("api", "worker-a", "worker-b")
        for name in names:  # one CA for every hub process and nats-server, as in a real deployment
            dest = pki.CaPaths(tmp_path / name / "pki")
            dest.root.mkdir(parents=True)
            dest.cert.write_bytes(ca.cert.read_bytes())
            pki.write_private(dest.key, ca.key.read_bytes())
        nats = start_nats(tmp_path, ca, [AGENT])
        services.append(nats)
        certs = tmp_path / "certs"
        pki.write_pair(pki.issue(ca, "edge1", agent_uri=AGENT), certs / "edge1.pem", certs / "edge1.key")
        nats_link = {"servers": [nats.url], "server_name": "localhost", "ack_wait_s": 3.0}
        common: dict[str, Any] = {
            "state_url": state_url,
            "bus": {"kind": "nats", **nats_link},
            "store": {"kind": "influx", "url": influx_url, "database": "outpost", "write_mode": "v1"},
            "alerts": {"timers": FAST},
        }
        api = start_hub(tmp_path, "api", extra={**common, "role": "api"})
        services.append(api)
        workers = {}
        for name in names[1:]:
            worker = {**common, "role": "worker", "nats": {"enabled": True, "fetch_batch": 4, **nats_link}}
            workers[name] = start_hub(tmp_path, name, extra=worker)
            services.append(workers[name])
        yield Cluster(api, workers, nats, influx_url, "outpost", certs, ca)
    finally:
        for svc in reversed(services):
            svc.stop()


def _alerts(c: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = c.get("/api/v1/alerts", params=params)
    assert r.status_code == 200, r.text
    alerts: list[dict[str, Any]] = r.json()["alerts"]
    return alerts


def _agent(c: httpx.Client) -> dict[str, Any]:
    agents = {a["id"]: a for a in c.get("/api/v1/agents").json()["agents"]}
    return agents.get(AGENT, {})


async def test_api_and_two_workers_share_alerts_lose_nothing_when_one_dies_and_store_a_redelivery_once(
    cluster: Cluster,
) -> None:
    api = cluster.client()
    agent = cluster.transport()
    replay = cluster.transport(LateReplay)
    try:
        # (a) A trap stored by a worker raises an alert in the engine's leader; the api serves and acks it.
        await agent.send(_envelope(1, trap="linkDown"))
        (link,) = wait_for(lambda: _alerts(api, match='alertname="LinkDown"'), what="the LinkDown alert")
        assert (link["status"], link["labels"]["device"], link["labels"]["agent"]) == ("firing", "sw1", AGENT)
        r = api.post(f"/api/v1/alerts/{link['id']}/ack")
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["acknowledged_by"]) == ("acknowledged", "admin")
        assert api.post("/api/v1/alerts/0123456789ab0123456789ab/ack").status_code == 404
        leader = wait_for(cluster.leader, what="an alerts leader")
        standby = next(n for n in cluster.workers if n != leader)

        # (b) Batches stream in over NATS; the leader is SIGKILLed half way.
        for seq in range(2, 21):
            await agent.send(_envelope(seq))
        # A batch the leader stored itself (over its gRPC port) just before it dies...
        pair = pki.issue(cluster.ca, "edge1", agent_uri=AGENT)
        grpc = GrpcTransport(
            cluster.workers[leader].grpc_address,
            ca_pem=cluster.ca.cert.read_bytes(),
            cert_pem=pair.cert_pem,
            key_pem=pair.key_pem,
            server_name="localhost",
        )
        await grpc.start()
        try:
            assert (await grpc.send(_envelope(21))).accepted_points == POINTS
        finally:
            await grpc.aclose()
        cluster.workers[leader].kill()
        for seq in range(22, 41):
            await agent.send(_envelope(seq))
        # (c) ...reaches the other worker again: stored once, its event once.
        assert (await replay.send(_envelope(21))).duplicate is False  # the stream took it again
        wait_for(lambda: _agent(api).get("batches_received") == 40, timeout=30, what="40 batches counted")
        wait_for(lambda: _agent(api).get("duplicates", 0) >= 1, timeout=15, what="the replay seen as one")
        time.sleep(4)  # past ack_wait: anything the dead worker held has been redelivered by now
        info = _agent(api)
        assert (info["batches_received"], info["points_received"], info["gaps"]) == (40, 40 * POINTS, 0)
        assert cluster.count_points() == 40 * POINTS
        events = api.get("/api/v1/events", params={"start": str(T0), "end": str(T0 + 3_600_000)}).json()
        assert sorted(int(e["ts_ms"]) for e in events["events"]) == [T0 + s * 60_000 for s in range(1, 41)]
        assert [e["message"] for e in events["events"] if e["kind"] == "snmp.trap"] == ["linkDown"]

        # The standby took the alert engine over: an alert posted now is applied and served.
        wait_for(lambda: cluster.leader() == standby, timeout=10, what="the standby leading")
        body = [{"labels": {"alertname": "DiskFull", "site": "dc1", "device": "nas1"}}]
        r = api.post("/api/v1/alerts", json=body)
        assert r.status_code == 202 and r.json()["accepted"] == 1 and r.json()["changed"] == 1, r.text
        (disk,) = _alerts(api, match='alertname="DiskFull"')
        assert disk["status"] == "firing" and disk["source"] == "api:admin"
        r = api.post(f"/api/v1/alerts/{disk['id']}/resolve")
        assert (r.status_code, r.json()["status"], r.json()["resolved_by"]) == (200, "resolved", "admin")
        # State the dead leader wrote is what the new one loaded: the LinkDown alert is still acknowledged.
        (still,) = _alerts(api, match='alertname="LinkDown"')
        assert (still["id"], still["status"]) == (link["id"], "acknowledged")
        r = api.post(f"/api/v1/incidents/{still['incident_id']}/notes", json={"text": "optic swapped"})
        assert r.status_code == 200, r.text
        timeline = api.get(f"/api/v1/incidents/{still['incident_id']}").json()["timeline"]
        assert [(e["kind"], e["text"], e["actor"]) for e in timeline if e["kind"] == "note"] == [
            ("note", "optic swapped", "admin")
        ]
        log = cluster.workers[standby].service.log()
        assert len(re.findall(r"alerts: runs in this process", log)) == 1
    finally:
        await agent.aclose()
        await replay.aclose()
        api.close()
