"""`make run`: a hub, an agent and simulated devices on this machine, on embedded defaults.

State lives in ./.outpost/ (kept between runs). Ctrl-C stops every process this script started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from demo_devices import start_demo_devices

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".outpost"
BIN = Path(sys.executable).parent
API = "127.0.0.1:8080"
GRPC = "127.0.0.1:4317"
CERTS = STATE / "agent" / "certs"


def _hub_config() -> Path:
    """Writes hub.yaml and, on first run, the agent's certificate from the hub's CA."""
    hub_cfg = STATE / "hub.yaml"
    hub_cfg.write_text(
        yaml.safe_dump({"data_dir": str(STATE / "hub"), "api": {"listen": API}, "grpc": {"listen": GRPC}})
    )
    if not (CERTS / "demo.pem").exists():
        issue = ["cert", "issue", "--agent", "demo", "--site", "local", "--out", str(CERTS)]
        subprocess.run([BIN / "outpost-hub", *issue, "--config", hub_cfg], check=True)
    return hub_cfg


def _agent_config(devices: list[dict[str, object]]) -> Path:
    """Writes agent.yaml: this host (fast, so the API shows it within seconds) plus the simulated devices."""
    agent_cfg = STATE / "agent.yaml"
    tls = {
        name: str(CERTS / f)
        for name, f in (("ca_file", "ca.pem"), ("cert_file", "demo.pem"), ("key_file", "demo.key"))
    }
    config = {
        "data_dir": str(STATE / "agent" / "data"),
        "hub": {"address": GRPC, "server_name": "localhost", "tls": tls},
        "devices": [{"kind": "host", "interval_s": 2}, *devices],
        "batch": {"max_age_s": 1},
    }
    agent_cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    return agent_cfg


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C and a service manager's SIGTERM both stop the demo cleanly, even when started in the background
    # (where a shell would otherwise leave SIGINT ignored).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    STATE.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        hub_cfg = _hub_config()
        procs.append(
            subprocess.Popen([BIN / "outpost-hub", "run", "--config", hub_cfg], start_new_session=True)
        )
        device_procs, devices = start_demo_devices(STATE / "devices")  # simulators start while the hub does
        procs[:0] = device_procs  # stopped last
        agent_cfg = _agent_config(devices)
        if not _wait_http(f"http://{API}/healthz", 30):
            print("hub did not start; see its log above", file=sys.stderr)
            return 1
        procs.append(
            subprocess.Popen([BIN / "outpost-agent", "run", "--config", agent_cfg], start_new_session=True)
        )
        token = (STATE / "hub" / "admin.token").read_text().strip()
        print(
            f"\n  Outpost is running.\n  Dashboard: http://{API}/   API token: {token}\n"
            f"  Try: curl -H 'Authorization: Bearer {token}' http://{API}/api/v1/agents\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("a process exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(procs)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Agent first (it flushes to the hub), then the hub, then the devices; each in its own process group."""
    for p in reversed(procs):
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


if __name__ == "__main__":
    sys.exit(main())
