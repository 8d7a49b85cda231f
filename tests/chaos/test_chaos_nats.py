"""No loss, no duplicates over NATS JetStream while the hub is SIGKILLed, the agent↔NATS link is cut and
the agent is SIGKILLed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.identity import pki
from tests.chaos.scenario import Chaos, Sequence
from tests.support.outpost import HubHandle, start_hub
from tests.support.procs import free_port
from tests.transport.natsd import start_nats

pytestmark = pytest.mark.e2e


def _run(tmp_path: Path, seq: Sequence, cycles: int, timeout_s: float) -> Chaos:
    ca = pki.CaPaths(tmp_path / "hub" / "pki")
    pki.init_ca(ca)
    nats = start_nats(tmp_path, ca, ["dc1/edge1"])
    ports = (free_port(), free_port())
    extra = {"nats": {"enabled": True, "servers": [nats.url], "server_name": "localhost", "ack_wait_s": 2}}

    def restart() -> HubHandle:
        return start_hub(tmp_path, extra=extra, ports=ports)

    hub = restart()
    tls = hub.issue_agent("edge1", tmp_path / "certs", site="dc1")

    def section(proxy_port: int) -> dict[str, object]:
        return {
            "transport": "nats",
            "address": hub.grpc_address,
            "server_name": "localhost",
            "tls": tls,
            "timeout_s": 3,
            "nats": {"servers": [f"tls://127.0.0.1:{proxy_port}"]},
        }

    chaos = Chaos(tmp_path, hub, restart, nats.port, section, seq)
    try:
        chaos.run(cycles=cycles, timeout_s=timeout_s)
        chaos.assert_exactly_once()
    finally:
        chaos.hub.stop()
        nats.stop()
    return chaos


def test_every_point_arrives_exactly_once_over_nats_through_hub_kill_link_cut_and_agent_kill(
    tmp_path: Path,
) -> None:
    chaos = _run(tmp_path, Sequence(series=10, ticks=1500, ticks_per_poll=10), cycles=1, timeout_s=60)
    assert chaos.log == ["hub SIGKILL", "link cut", "agent SIGKILL", "link restored"]
    assert "to replay from" in chaos.agent_log and "cut a torn record" in chaos.agent_log


@pytest.mark.slow
@pytest.mark.timeout(480)  # above the scenario's own 300 s wait, so a failure says what was stored
def test_soak_two_hundred_thousand_points_over_nats_survive_repeated_faults_exactly_once(
    tmp_path: Path,
) -> None:
    _run(tmp_path, Sequence(series=20, ticks=12_000, ticks_per_poll=40), cycles=4, timeout_s=300)
