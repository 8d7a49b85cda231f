"""`make run` shows an alert's whole life: the demo's link fault (a real linkDown trap from the lab switch's
own address, then linkUp) fires a LinkDown alert on that switch, groups it into an incident, and resolves it.

The real `packaging/demo.py` runs as a subprocess on free ports with only the lab switch and the BMC, and
short fault timings (linkDown 3 s after the agent's trap receiver listens, linkUp 10 s later; the BMC's
temperature fault off, so the only alert is the one under test).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.outpost import wait_for
from tests.support.procs import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "packaging" / "demo.py"


class Demo:
    def __init__(self, tmp_path: Path) -> None:
        self.state, self.out = tmp_path / "state", tmp_path / "demo.out"
        self.api = f"http://127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "OUTPOST_DEMO_STATE": str(self.state),
            "OUTPOST_DEMO_API": self.api.removeprefix("http://"),
            "OUTPOST_DEMO_GRPC": f"127.0.0.1:{free_port()}",
            "OUTPOST_DEMO_TELEMETRY": f"127.0.0.1:{free_port()}",
            "OUTPOST_DEMO_DEVICES": "lab",
            "OUTPOST_DEMO_LINK_FAULT": "3,10,600",
            "OUTPOST_DEMO_TEMP_FAULT": "off",
        }
        with self.out.open("wb") as f:
            self.proc = subprocess.Popen(
                [sys.executable, str(DEMO)],
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def get(self, path: str, **params: Any) -> Any:
        """The demo hub's API with its admin token; None until the hub answers."""
        token_file = self.state / "hub" / "admin.token"
        if not token_file.exists():
            return None
        try:
            r = httpx.get(
                self.api + path,
                params=params,
                headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
                timeout=5,
            )
        except httpx.TransportError:
            return None
        assert self.proc.poll() is None, self.output()[-3000:]
        r.raise_for_status()
        return r.json()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    d = Demo(tmp_path)
    try:
        yield d
    finally:
        d.stop()


def _link_alerts(demo: Demo, status: str) -> list[dict[str, Any]]:
    body = demo.get("/api/v1/alerts", status=status, limit=100)
    return [a for a in (body or {"alerts": []})["alerts"] if a["labels"].get("alertname") == "LinkDown"]


@pytest.mark.timeout(120)
def test_the_demo_link_fault_fires_a_link_down_alert_groups_it_into_an_incident_and_resolves_it(
    demo: Demo,
) -> None:
    began = time.monotonic()
    fired = wait_for(lambda: _link_alerts(demo, "firing"), timeout=60, interval=0.3, what="LinkDown firing")
    assert len(fired) == 1, fired
    alert = fired[0]
    assert alert["labels"]["device"] == "lab-growing"  # named by the trap's source address, 127.0.0.2
    assert alert["labels"]["ifIndex"] == "1"
    assert alert["labels"]["agent"] == "local/demo"
    assert alert["severity"] == "warning"
    assert alert["source"] == "snmp-trap"
    assert alert["flapping"] is False

    resolved = wait_for(
        lambda: [a for a in _link_alerts(demo, "resolved") if a["id"] == alert["id"]],
        timeout=40,
        interval=0.3,
        what="the LinkDown alert resolved by linkUp",
    )
    assert resolved[0]["ends_ms"] >= resolved[0]["starts_ms"] + 9_000  # linkUp came 10 s after linkDown
    assert _link_alerts(demo, "firing") == []

    listed = demo.get("/api/v1/incidents", limit=50)["incidents"]
    incidents = [i for i in listed if alert["id"] in i["alert_ids"]]
    assert len(incidents) == 1, incidents
    incident = incidents[0]
    assert incident["id"] == alert["incident_id"]  # grouped as it fired
    assert incident["labels"] == {"site": "local", "device": "lab-growing"}  # group_by: site, device
    assert incident["alert_ids"] == [alert["id"]]
    assert incident["status"] == "resolved"  # its only alert resolved
    assert incident["open_alerts"] == []
    assert incident["resolved_ms"] >= resolved[0]["ends_ms"]
    assert time.monotonic() - began < 90

    # the switch's syslog lines for the change, from its address: stored under the same device name
    def link_lines() -> list[dict[str, Any]]:
        body = demo.get("/api/v1/logs", device="lab-growing", app="IFMGR", **{"from": "-10m"})
        found: list[dict[str, Any]] = (body or {"logs": []})["logs"]
        return found if len(found) >= 2 else []

    lines = wait_for(link_lines, timeout=20, interval=0.3, what="the link's two syslog lines")
    assert [(line["message"], line["severity"]) for line in lines] == [
        ("Interface Ethernet1, changed state to up", 5),
        ("Interface Ethernet1, changed state to down", 3),
    ]  # newest first
    assert {line["agent"] for line in lines} == {"local/demo"}
    # Two events, so two templates: the miner keeps a state word against its opposite (up / down) apart,
    # and a burst of link-down lines shows in its own template's counts.
    up_id, down_id = lines[0]["template_id"], lines[1]["template_id"]
    assert "" != up_id != down_id != ""
    templates = {t["template_id"]: t["template"] for t in demo.get("/api/v1/logs/templates")["templates"]}
    assert templates[up_id].endswith("changed state to up"), templates
    assert templates[down_id].endswith("changed state to down"), templates

    out = demo.output()
    # one console line per fault state change: one down, one up so far
    down, up = "link DOWN (linkDown trap from 127.0.0.2", "link UP again (linkUp trap from 127.0.0.2"
    assert out.count(f"fault: lab-growing Ethernet1 {down}") == 1, out[-3000:]
    assert out.count(f"fault: lab-growing Ethernet1 {up}") == 1, out[-3000:]
    assert demo.stop() == 0
    assert "Traceback" not in demo.output()


def test_a_bad_fault_timing_makes_the_demo_refuse_to_start_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "OUTPOST_DEMO_STATE": str(tmp_path / "state"), "OUTPOST_DEMO_LINK_FAULT": "soon"}
    done = subprocess.run(
        [sys.executable, str(DEMO)], env=env, cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2, done
    assert done.stderr.strip() == (
        "make run: OUTPOST_DEMO_LINK_FAULT: expected `first,duration,every` seconds (each > 0, < 1 day)"
        " or `off`: 'soon'"
    )
    assert not (tmp_path / "state").exists()
