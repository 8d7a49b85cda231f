"""A real agent process with its syslog receiver on: lines received while the hub is down wait in the
spool and reach a real hub once it is back, every batch accounted for; a sender over its rate limit shows
as drops on the agent's /metrics."""

from __future__ import annotations

import asyncio
import re
import signal
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


async def _flood_from(address: str, port: int, n: int) -> None:
    """`n` LF-framed lines over TCP from another loopback address: a sender of its own for the limiter."""
    _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    writer.write(b"".join(b"<13>1 - flood app - - - line %d\n" % i for i in range(n)))
    await writer.drain()
    writer.close()
    await writer.wait_closed()


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
        # Every sender may send 500 lines at once, then practically nothing.
        syslog=_syslog(port, rate_per_source=0.001, burst_per_source=500),
    )
    agent = start_agent(cfg, tmp_path / "logs")
    health, metrics_url = f"http://127.0.0.1:{telemetry}/healthz", f"http://127.0.0.1:{telemetry}/metrics"
    try:
        lines = tmp_path / "lines.txt"
        lines.write_text("".join(f"interface eth{i} changed state to down\n" for i in range(450)))
        await logger(
            "--rfc5424", "--octet-count", "-n", "127.0.0.1", "-P", str(port), "--tcp", "-f", str(lines)
        )
        await _flood_from("127.0.0.2", port, 530)  # 30 over its burst
        received = "outpost_agent_syslog_messages_received_total"
        wait_for(
            lambda: _metric(httpx.get(metrics_url).text, received, transport="tcp") == 980, what="all counted"
        )
        metrics = httpx.get(metrics_url).text
        assert _metric(metrics, "outpost_agent_syslog_messages_dropped_total", reason="rate_limited") == 30
        assert _metric(metrics, "outpost_agent_syslog_messages_dropped_total", reason="queue_full") == 0
        # 950 lines in batches of at most 100: ten LOGS batches wait in the spool (and a heartbeat, unless
        # it is out for delivery just then).
        wait_for(lambda: httpx.get(health).json()["outbox_pending"] >= 10, what="log batches spooled")
        assert not httpx.get(health).json()["hub_connected"]
        hub = start_hub(tmp_path, ports=(api_port, grpc_port))
        try:
            wait_for(
                lambda: httpx.get(health).json()["outbox_pending"] == 0, timeout=60, what="spool drained"
            )
            sent = httpx.get(health).json()["next_seq"] - 1
            info = wait_for(
                lambda: [a for a in hub.get("/api/v1/agents")["agents"] if a["batches_received"] >= sent],
                what="every batch counted at the hub",
            )[0]
            # Every seq of this boot arrived (no gaps): the LOGS batches share the sequence with heartbeats.
            assert info["id"] == "dc1/edge" and info["gaps"] == 0 and sent >= 11
            metrics = httpx.get(metrics_url).text
            shed = {"class": "logs", "reason": "full"}
            assert _metric(metrics, "outpost_agent_dropped_batches_total", **shed) == 0
            # While the hub is up (a graceful stop drains, and would wait 10 s for a hub); SIGKILL only
            # after 30 s: a push in flight to a hub slowed by a loaded machine may take its 10 s timeout.
            agent.kill(signal.SIGTERM, timeout=30)
        finally:
            hub.stop()
    finally:
        agent.stop()  # a no-op when already stopped
    assert agent.proc.returncode == 0 and "Traceback" not in agent.log()
    assert agent.log().count("over its rate limit") == 1  # logged once, not per dropped line
