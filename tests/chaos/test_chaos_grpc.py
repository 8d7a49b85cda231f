"""No loss, no duplicates over gRPC while the hub is SIGKILLed, the link is cut and the agent is SIGKILLed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.scenario import Chaos, Sequence
from tests.support.outpost import HubHandle, start_hub
from tests.support.procs import free_port

pytestmark = pytest.mark.e2e


def _chaos(tmp_path: Path, seq: Sequence) -> Chaos:
    ports = (free_port(), free_port())
    hub = start_hub(tmp_path, ports=ports)
    tls = hub.issue_agent("edge1", tmp_path / "certs", site="dc1")

    def restart() -> HubHandle:
        return start_hub(tmp_path, ports=ports)

    def section(proxy_port: int) -> dict[str, object]:
        return {"address": f"127.0.0.1:{proxy_port}", "server_name": "localhost", "tls": tls, "timeout_s": 3}

    return Chaos(tmp_path, hub, restart, ports[1], section, seq)


def test_every_point_arrives_exactly_once_through_hub_kill_link_cut_and_agent_kill(tmp_path: Path) -> None:
    chaos = _chaos(tmp_path, Sequence(series=10, ticks=1500, ticks_per_poll=10))
    try:
        chaos.run(cycles=1, timeout_s=60)
        chaos.assert_exactly_once()
    finally:
        chaos.hub.stop()
    assert chaos.log == ["hub SIGKILL", "link cut", "agent SIGKILL", "link restored"]
    assert "to replay from" in chaos.agent_log and "cut a torn record" in chaos.agent_log


@pytest.mark.slow
@pytest.mark.timeout(480)  # above the scenario's own 300 s wait, so a failure says what was stored
def test_soak_two_hundred_thousand_points_survive_repeated_faults_exactly_once(tmp_path: Path) -> None:
    chaos = _chaos(tmp_path, Sequence(series=20, ticks=12_000, ticks_per_poll=40))
    try:
        chaos.run(cycles=4, timeout_s=300)
        chaos.assert_exactly_once()
    finally:
        chaos.hub.stop()
