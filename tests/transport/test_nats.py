"""NATS JetStream delivery: identity from the certificate (via the subject nats-server allows), durable
pull consumer shared by two hub workers with no loss and no duplicates, revoked agents discarded."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.transport.nats import NatsTransport
from hub.identity import pki
from shared.errors import TransientError
from tests.support.outpost import BIN, HubHandle, start_hub, wait_for
from tests.transport.items import metrics_item
from tests.transport.natsd import NatsServer, start_nats

pytestmark = pytest.mark.integration

AGENTS = ["dc1/edge1", "dc1/edge2"]


def _hub_nats(nats: NatsServer, **extra: Any) -> dict[str, Any]:
    return {
        "nats": {"enabled": True, "servers": [nats.url], "server_name": "localhost", "ack_wait_s": 2, **extra}
    }


def _start_nats_hub(tmp: Path, name: str, nats: NatsServer, extra: dict[str, Any] | None = None) -> HubHandle:
    """A hub consuming from `nats`, returned once it has declared its stream: "hub running" comes before
    the consumer's first subscription, and a publish in between gets "no response from stream"."""
    hub = start_hub(tmp, name, extra=extra or _hub_nats(nats))
    hub.service.wait_log(r"consuming \S+ from NATS stream")
    return hub


def _prepare(tmp: Path, *hubs: str) -> pki.CaPaths:
    """One CA shared by the hub workers and nats-server (as in a real deployment)."""
    ca = pki.CaPaths(tmp / "ca")
    pki.init_ca(ca)
    for name in hubs:
        dest = pki.CaPaths(tmp / name / "pki")
        dest.root.mkdir(parents=True, exist_ok=True)
        dest.cert.write_bytes(ca.cert.read_bytes())
        pki.write_private(dest.key, ca.key.read_bytes())
    return ca


def _transport(tmp: Path, ca: pki.CaPaths, agent: str, nats: NatsServer) -> NatsTransport:
    site, name = agent.split("/")
    out = tmp / "certs"
    pki.write_pair(pki.issue(ca, name, agent_uri=agent), out / f"{name}.pem", out / f"{name}.key")
    return NatsTransport(
        (nats.url,),
        "outpost.ingest",
        ca_file=ca.cert,
        cert_file=out / f"{name}.pem",
        key_file=out / f"{name}.key",
        server_name="localhost",
        timeout_s=2,
    )


def _agents(hub: HubHandle) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in hub.get("/api/v1/agents")["agents"]}


async def test_batches_published_to_nats_are_stored_under_the_certificate_identity(tmp_path: Path) -> None:
    ca = _prepare(tmp_path, "hub")
    nats = start_nats(tmp_path, ca, AGENTS)
    hub = _start_nats_hub(tmp_path, "hub", nats)
    t = _transport(tmp_path, ca, "dc1/edge1", nats)
    try:
        await t.start()
        first = await t.send(metrics_item(1, points=100).envelope)
        again = await t.send(metrics_item(1, points=100).envelope)  # a re-send inside the dedup window
        await t.send(metrics_item(2, points=50).envelope)
        assert (first.accepted_points, first.duplicate, again.duplicate) == (100, False, True)
        info = wait_for(
            lambda: _agents(hub).get("dc1/edge1", {}).get("batches_received") == 2 and _agents(hub)
        )
        assert info["dc1/edge1"]["points_received"] == 150
        assert set(info) == {"dc1/edge1"}
    finally:
        await t.aclose()
        hub.stop()
        nats.stop()


async def test_an_agent_cannot_publish_under_another_agents_subject(tmp_path: Path) -> None:
    ca = _prepare(tmp_path, "hub")
    nats = start_nats(tmp_path, ca, AGENTS)
    t = _transport(tmp_path, ca, "dc1/edge1", nats)
    try:
        await t.start()
        t.subject = "outpost.ingest.dc1.edge2"  # what a compromised agent would try
        with pytest.raises(TransientError):
            await t.send(metrics_item(1).envelope)
    finally:
        await t.aclose()
        nats.stop()
    assert 'Publish Violation - Subject "outpost.ingest.dc1.edge2"' in nats.service.log()


async def test_two_hub_workers_share_the_durable_consumer_without_loss_or_duplicates(tmp_path: Path) -> None:
    ca = _prepare(tmp_path, "hub-a", "hub-b")
    nats = start_nats(tmp_path, ca, AGENTS)
    hubs = [_start_nats_hub(tmp_path, n, nats, _hub_nats(nats, fetch_batch=4)) for n in ("hub-a", "hub-b")]
    t = _transport(tmp_path, ca, "dc1/edge2", nats)
    batches, points = 200, 20
    try:
        await t.start()
        for seq in range(1, batches + 1):
            await t.send(metrics_item(seq, points=points).envelope)

        def totals() -> tuple[int, int, int]:
            infos = [_agents(h).get("dc1/edge2", {}) for h in hubs]
            return (
                sum(i.get("batches_received", 0) for i in infos),
                sum(i.get("points_received", 0) for i in infos),
                sum(i.get("duplicates", 0) for i in infos),
            )

        wait_for(lambda: totals()[0] >= batches, timeout=30, what="all batches consumed")
        time.sleep(3)  # longer than ack_wait: a message acked late would be redelivered by now
        assert totals() == (batches, batches * points, 0)
        shares = [_agents(h).get("dc1/edge2", {}).get("batches_received", 0) for h in hubs]
        assert all(s > 0 for s in shares), shares
    finally:
        await t.aclose()
        for h in hubs:
            h.stop()
        nats.stop()


async def test_messages_of_a_revoked_agent_are_discarded_and_counted(tmp_path: Path) -> None:
    ca = _prepare(tmp_path, "hub")
    nats = start_nats(tmp_path, ca, AGENTS)
    hub = _start_nats_hub(tmp_path, "hub", nats, {**_hub_nats(nats), "enroll": {"revocation_refresh_s": 0.5}})
    t = _transport(tmp_path, ca, "dc1/edge1", nats)
    try:
        await t.start()
        await t.send(metrics_item(1).envelope)
        wait_for(lambda: _agents(hub).get("dc1/edge1", {}).get("batches_received") == 1)
        subprocess.run(
            [str(BIN / "outpost-hub"), "agent", "revoke", "dc1/edge1", "--config", str(hub.config_path)],
            check=True,
            capture_output=True,
        )
        time.sleep(1.5)
        await t.send(metrics_item(2).envelope)
        wait_for(
            lambda: (
                'outpost_hub_ingest_rejected_total{reason="revoked",transport="nats"} 1.0' in _metrics(hub)
            ),
            what="revoked message counted",
        )
        assert _agents(hub)["dc1/edge1"]["batches_received"] == 1
    finally:
        await t.aclose()
        hub.stop()
        nats.stop()


def _metrics(hub: HubHandle) -> str:
    return httpx.get(hub.api_url + "/metrics").text
