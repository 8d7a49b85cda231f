"""`make run`: a hub, an agent and simulated devices on this machine, on embedded defaults.

State lives in ./.outpost/ (kept between runs). Ctrl-C, SIGTERM or closing the terminal (SIGHUP) stops
every process this script started; they are also told by the kernel to stop if this script dies without
cleaning up (SIGKILL, a crash), so no run leaves a hub, agent or simulator behind. A run whose ports are
taken refuses to start, naming the port and what holds it, before it starts anything.

Half a minute in, a simulated fault shows the alerting at work (`demo_faults.py`): the lab switch sends a
linkDown trap and its syslog line (a LinkDown alert fires, its incident opens, the line shows under Logs)
and 90 s later linkUp (both resolve); the BMC's inlet temperature climbs past its critical limit and
back. They repeat every 10 and 15 minutes.

OUTPOST_DEMO_STATE, OUTPOST_DEMO_API, OUTPOST_DEMO_GRPC, OUTPOST_DEMO_TELEMETRY, OUTPOST_DEMO_TRAPS and
OUTPOST_DEMO_SYSLOG (both UDP; default a free port, printed) move the state and the ports;
OUTPOST_DEMO_DEVICES=lab starts only the lab switch and the BMC (what the tests use);
OUTPOST_DEMO_LINK_FAULT and OUTPOST_DEMO_TEMP_FAULT set the faults' timings (`first,duration,every`
seconds, or `off`).
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
from demo_devices import BMC, LAB, LAB_ADDRESS, die_with_parent, start_demo_devices
from demo_faults import LINK_DEFAULT, TEMP_DEFAULT, TRAP_COMMUNITY, Faults, LinkFault, TempFault, timings

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("OUTPOST_DEMO_STATE") or ROOT / ".outpost")
BIN = Path(sys.executable).parent
API = os.environ.get("OUTPOST_DEMO_API") or "127.0.0.1:8080"
GRPC = os.environ.get("OUTPOST_DEMO_GRPC") or "127.0.0.1:4317"
TELEMETRY = os.environ.get("OUTPOST_DEMO_TELEMETRY") or "127.0.0.1:9465"
TRAPS = os.environ.get("OUTPOST_DEMO_TRAPS") or ""  # "" = a free UDP port on 127.0.0.1
SYSLOG = os.environ.get("OUTPOST_DEMO_SYSLOG") or ""  # the same
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


def _agent_config(devices: list[dict[str, object]], traps: str, syslog: str) -> Path:
    """Writes agent.yaml: this host (fast, so the API shows it within seconds) plus the simulated devices,
    the trap receiver on `traps` (host:port) for the demo's faults and anyone's `snmptrap`, and the
    syslog receiver on UDP `syslog` for the faults' log lines and anyone's `logger`."""
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
        "traps": {"enabled": True, "listen": traps, "communities": [TRAP_COMMUNITY]},
        "syslog": {"enabled": True, "udp_listen": syslog, "tcp_listen": None, "batch_max_age_s": 1},
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


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def busy_ports(listens: dict[str, str], udp: dict[str, str] | None = None) -> list[str]:
    """One line per `name -> host:port` (TCP; UDP for `udp`) that cannot be bound now, saying what holds
    it when known.

    Checked before anything starts: otherwise a hub left over from an earlier run answers the health
    check, the demo says it is running, and then its own hub fails to bind.
    """
    lines = []
    wanted = [(n, a, socket.SOCK_STREAM) for n, a in listens.items()]
    wanted += [(n, a, socket.SOCK_DGRAM) for n, a in (udp or {}).items()]
    for name, listen, kind in wanted:
        host, _, port = listen.rpartition(":")
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            try:
                s.bind((host, int(port)))
                continue
            except OSError as exc:
                reason = exc.strerror or str(exc)
        who = _holder(int(port)) if kind == socket.SOCK_STREAM else ""
        held = f", held by {who}" if who else ""
        lines.append(f"port {port} ({name}, {listen}) is not free: {reason}{held}")
    return lines


def main() -> int:
    # Ctrl-C, a service manager's SIGTERM and a closed terminal's SIGHUP all stop the demo cleanly, even
    # when started in the background (where a shell would otherwise leave SIGINT ignored).
    for sig in STOP_SIGNALS:
        signal.signal(sig, _interrupt)
    fault_timings = []
    faults_env = (("OUTPOST_DEMO_LINK_FAULT", LINK_DEFAULT), ("OUTPOST_DEMO_TEMP_FAULT", TEMP_DEFAULT))
    for name, default in faults_env:
        try:
            fault_timings.append(timings(os.environ.get(name), default))
        except ValueError as exc:
            print(f"make run: {name}: {exc}", file=sys.stderr)
            return 2
    link_timing, temp_timing = fault_timings
    udp = {name: addr for name, addr in (("agent traps", TRAPS), ("agent syslog", SYSLOG)) if addr}
    busy = busy_ports({"API": API, "gRPC": GRPC, "agent telemetry": TELEMETRY}, udp=udp)
    if busy:
        print("make run: not starting, its ports are taken:", *busy, sep="\n  ", file=sys.stderr)
        print(
            "Stop what holds them (an earlier `make run`?)"
            " or set OUTPOST_DEMO_API/GRPC/TELEMETRY/TRAPS/SYSLOG.",
            file=sys.stderr,
        )
        return 1
    traps = TRAPS or f"127.0.0.1:{_free_udp_port()}"
    syslog = SYSLOG or f"127.0.0.1:{_free_udp_port()}"
    STATE.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    device_procs: list[subprocess.Popen[bytes]] = []  # stopped last
    faults: Faults | None = None
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
        agent_cfg = _agent_config(devices, traps, syslog)
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
        runs = []
        if link_timing:
            runs.append(LinkFault(LAB, LAB_ADDRESS, traps, *link_timing, syslog=syslog).run)
        if temp_timing:
            runs.append(TempFault(BMC, STATE / "devices" / "redfish", *temp_timing).run)
        faults = Faults(runs)
        # The hub prints the token itself, once, when it creates it; here only where it is kept.
        token_file = STATE / "hub" / "admin.token"
        link = f"in {link_timing[0]:g} s the lab switch's link goes down" if link_timing else "no link fault"
        print(
            f"\n  Outpost is running.\n  Dashboard: http://{API}/   API token: in {token_file} (0600)\n"
            f'  Try: curl -H "Authorization: Bearer $(cat {token_file})" http://{API}/api/v1/agents\n'
            f"  Faults: {link} (watch Alerts and Incidents on the dashboard); traps go to {traps}:\n"
            f"    snmptrap -v2c -c {TRAP_COMMUNITY} {traps} '' 1.3.6.1.6.3.1.1.5.3"
            " 1.3.6.1.2.1.2.2.1.1.7 i 7\n"
            f"  Logs: syslog to UDP {syslog} shows under Logs:\n"
            f"    logger -n {syslog.rpartition(':')[0]} -P {syslog.rpartition(':')[2]} --udp --rfc5424"
            " -t myapp 'hello from my host'\n"
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
        if faults is not None:
            faults.stop()
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
