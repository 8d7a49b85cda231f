"""A real agent process with its syslog receiver on: drops show on its /metrics, and lines received while
the hub is down wait in the spool and reach a real hub once it is back, every batch accounted for."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from hub.identity import pki
from tests.collect.test_syslog_receiver import logger
from tests.support.outpost import start_agent, start_hub, wait_for, write_agent_config
from tests.support.procs import free_port

pytestmark = pytest.mark.e2e


def _metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition; 0 when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m and (m.group(1) or "") == want:
            return float(m.group(2))
    return 0.0


def _syslog(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "udp_listen": f"127.0.0.1:{port}",
        "tcp_listen": f"127.0.0.1:{port}",
        "batch_max_records": 100,
        "batch_max_age_s": 0.3,
        **extra,
    }


def _agent_tls(ca_root: Path, out: Path) -> dict[str, str]:
    """A CA under `ca_root` (created if missing) and the agent certificate dc1/edge it signed, in `out`."""
    ca = pki.CaPaths(ca_root)
    pki.init_ca(ca)
    pki.write_pair(pki.issue(ca, "edge", agent_uri="dc1/edge"), out / "edge.pem", out / "edge.key")
    return {"ca_file": str(ca.cert), "cert_file": str(out / "edge.pem"), "key_file": str(out / "edge.key")}


async def test_a_sender_over_its_rate_limit_shows_as_drops_on_the_agents_metrics(tmp_path: Path) -> None:
    port, telemetry = free_port(), free_port()
    nowhere = SimpleNamespace(grpc_address=f"127.0.0.1:{free_port()}")  # no hub: drops happen before it
    cfg = write_agent_config(
        tmp_path / "agent.yaml",
        nowhere,
        _agent_tls(tmp_path / "ca", tmp_path / "certs"),
        devices=[],
        telemetry={"listen": f"127.0.0.1:{telemetry}"},
        syslog=_syslog(port, rate_per_source=0.001, burst_per_source=10),
    )
    agent = start_agent(cfg, tmp_path / "logs")
    try:
        lines = tmp_path / "lines.txt"
        lines.write_text("".join(f"line {i}\n" for i in range(30)))
        await logger(
            "--rfc5424", "-n", "127.0.0.1", "-P", str(port), "--tcp", "-t", "chatty", "-f", str(lines)
        )
        url = f"http://127.0.0.1:{telemetry}/metrics"

        def scraped() -> str | None:
            text = httpx.get(url).text
            done = _metric(text, "outpost_agent_syslog_messages_received_total", transport="tcp") == 30
            return text if done else None

        text = wait_for(scraped, what="30 messages counted")
        assert _metric(text, "outpost_agent_syslog_messages_dropped_total", reason="rate_limited") == 20
        assert _metric(text, "outpost_agent_syslog_messages_dropped_total", reason="queue_full") == 0
    finally:
        agent.kill()  # its spool is of no interest here, and a graceful stop would wait for a hub
    assert agent.log().count("over its rate limit") == 1  # logged once, not per dropped line


async def test_lines_received_while_the_hub_is_down_are_delivered_when_it_is_back(tmp_path: Path) -> None:
    # The hub keeps the CA it finds in its data dir: the agent's certificate exists before the hub ever runs.
    tls = _agent_tls(tmp_path / "hub" / "pki", tmp_path / "certs")
    api_port, grpc_port, port, telemetry = free_port(), free_port(), free_port(), free_port()
    cfg = write_agent_config(
        tmp_path / "agent.yaml",
        SimpleNamespace(grpc_address=f"127.0.0.1:{grpc_port}"),
        tls,
        devices=[],
        telemetry={"listen": f"127.0.0.1:{telemetry}"},
        syslog=_syslog(port),
    )
    agent = start_agent(cfg, tmp_path / "logs")
    try:
        lines = tmp_path / "lines.txt"
        lines.write_text("".join(f"interface eth{i} changed state to down\n" for i in range(450)))
        await logger(
            "--rfc5424", "--octet-count", "-n", "127.0.0.1", "-P", str(port), "--tcp", "-f", str(lines)
        )
        health = f"http://127.0.0.1:{telemetry}/healthz"
        # 450 lines in batches of at most 100: five LOGS batches (and a heartbeat) wait in the spool.
        wait_for(lambda: httpx.get(health).json()["outbox_pending"] >= 6, what="log batches spooled")
        assert not httpx.get(health).json()["hub_connected"]
        hub = start_hub(tmp_path, ports=(api_port, grpc_port))
        try:
            wait_for(
                lambda: httpx.get(health).json()["outbox_pending"] == 0, timeout=40, what="spool drained"
            )
            sent = httpx.get(health).json()["next_seq"] - 1
            info = wait_for(
                lambda: [a for a in hub.get("/api/v1/agents")["agents"] if a["batches_received"] >= sent],
                what="every batch counted at the hub",
            )[0]
            # Every seq of this boot arrived (no gaps): the LOGS batches share the sequence with heartbeats.
            assert info["id"] == "dc1/edge" and info["gaps"] == 0 and sent >= 6
            metrics = httpx.get(f"http://127.0.0.1:{telemetry}/metrics").text
            assert _metric(metrics, "outpost_agent_syslog_messages_received_total", transport="tcp") == 450
            assert (
                _metric(metrics, "outpost_agent_dropped_batches_total", **{"class": "logs", "reason": "full"})
                == 0
            )
        finally:
            hub.stop()
    finally:
        agent.stop()
    assert "Traceback" not in agent.log()
