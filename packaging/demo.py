"""`make run`: a hub, an agent and simulated devices on this machine, on embedded defaults.

State lives in ./.outpost/ (kept between runs). Ctrl-C, SIGTERM or closing the terminal (SIGHUP) stops
every process this script started; they are also told by the kernel to stop if this script dies without
cleaning up (SIGKILL, a crash), so no run leaves a hub, agent or simulator behind. A run whose ports are
taken refuses to start, naming the port and what holds it, before it starts anything.

OUTPOST_DEMO_STATE, OUTPOST_DEMO_API, OUTPOST_DEMO_GRPC and OUTPOST_DEMO_TELEMETRY move the state and
the ports; OUTPOST_DEMO_DEVICES=lab starts only the lab switch and the BMC (what the tests use).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import yaml
from demo_devices import die_with_parent, start_demo_devices

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("OUTPOST_DEMO_STATE") or ROOT / ".outpost")
BIN = Path(sys.executable).parent
API = os.environ.get("OUTPOST_DEMO_API") or "127.0.0.1:8080"
GRPC = os.environ.get("OUTPOST_DEMO_GRPC") or "127.0.0.1:4317"
TELEMETRY = os.environ.get("OUTPOST_DEMO_TELEMETRY") or "127.0.0.1:9465"
LAB_ONLY = os.environ.get("OUTPOST_DEMO_DEVICES") == "lab"
CERTS = STATE / "agent" / "certs"
# Signals that end the demo: Ctrl-C, a service manager's stop, and the terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
        "telemetry": {"listen": TELEMETRY},
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


def _holder(port: int) -> str:
    """Who listens on TCP `port`, as `pid 123 (outpost-hub run ...)`, or "" when we cannot tell."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return ""
    for c in conns:
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
            try:
                cmd = " ".join(psutil.Process(c.pid).cmdline())[:120]
            except psutil.Error:
                cmd = "?"
            return f"pid {c.pid} ({cmd})"
    return ""


def busy_ports(listens: dict[str, str]) -> list[str]:
    """One line per `name -> host:port` that cannot be bound now, saying what holds it when known.

    Checked before anything starts: otherwise a hub left over from an earlier run answers the health
    check, the demo says it is running, and then its own hub fails to bind.
    """
    lines = []
    for name, listen in listens.items():
        host, _, port = listen.rpartition(":")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                s.bind((host, int(port)))
                continue
            except OSError as exc:
                reason = exc.strerror or str(exc)
        who = _holder(int(port))
        held = f", held by {who}" if who else ""
        lines.append(f"port {port} ({name}, {listen}) is not free: {reason}{held}")
    return lines


def main() -> int:
    # Ctrl-C, a service manager's SIGTERM and a closed terminal's SIGHUP all stop the demo cleanly, even
    # when started in the background (where a shell would otherwise leave SIGINT ignored).
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)
    busy = busy_ports({"API": API, "gRPC": GRPC, "agent telemetry": TELEMETRY})
    if busy:
        print("make run: not starting, its ports are taken:", *busy, sep="\n  ", file=sys.stderr)
        print(
            "Stop what holds them (an earlier `make run`?) or set OUTPOST_DEMO_API/GRPC/TELEMETRY.",
            file=sys.stderr,
        )
        return 1
    STATE.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    device_procs: list[subprocess.Popen[bytes]] = []  # stopped last
    try:
        hub_cfg = _hub_config()
        procs.append(
            subprocess.Popen(
                [BIN / "outpost-hub", "run", "--config", hub_cfg],
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        )
        # the simulators start while the hub does
        devices = start_demo_devices(STATE / "devices", device_procs, lab_only=LAB_ONLY)
        agent_cfg = _agent_config(devices)
        if not _wait_http(f"http://{API}/healthz", 30):
            print("hub did not start; see its log above", file=sys.stderr)
            return 1
        procs.append(
            subprocess.Popen(
                [BIN / "outpost-agent", "run", "--config", agent_cfg],
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        )
        # The hub prints the token itself, once, when it creates it; here only where it is kept.
        token_file = STATE / "hub" / "admin.token"
        print(
            f"\n  Outpost is running.\n  Dashboard: http://{API}/   API token: in {token_file} (0600)\n"
            f"  Try: curl -H \"Authorization: Bearer $(cat {token_file})\" http://{API}/api/v1/agents\n"
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
        _stop([*device_procs, *procs])


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Agent first (it flushes to the hub), then the hub, then the devices; each in its own process group.

    A second Ctrl-C (or the SIGHUP that follows a SIGINT when the terminal closes) must not cut the
    stopping short: the signals are ignored from here on.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    for p in reversed(procs):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:  # it ended between poll() and the signal
                p.wait()


if __name__ == "__main__":
    sys.exit(main())
