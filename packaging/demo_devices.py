"""Real-looking devices for `make run`: snmpsim serving recorded devices and sushy-static serving a BMC.

The recorded devices come from the `snmpsim-data` wheel (a Cisco Catalyst, an Arista switch, an APC rack
PDU, an Eaton UPS) plus one lab switch whose counters grow, so rates move; the Redfish tree is the
Dell iDRAC mockup the collector tests use. The lab switch answers on its own loopback address too
(LAB_ADDRESS, 127.0.0.2: Linux routes all of 127.0.0.0/8 to lo), so the traps the demo's fault sends from
there name it, as a real switch's traps name it by their source address. `start_demo_devices` adds each
process to a list as it starts (stop them by PID) and returns the agent `devices:` entries that poll them.
Every process is started with `die_with_parent`, so the kernel stops it if the demo dies without
stopping it.
"""

from __future__ import annotations

import bz2
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "collect" / "fixtures"
BIN = Path(sys.executable).parent
RECORDED = {
    "network/switch/cisco-c3560": "cisco-c3560",
    "cloud/arista-dcs-7150s-52-cl": "arista-7150s",
    "UPS/apc-8932": "apc-8932",
    "UPS/eaton-93e-80": "eaton-93e",
}
REDFISH_TREE = "dell-idrac9-legacy"
BMC = "bmc-r740"
LAB = "lab-growing"
LAB_ADDRESS = "127.0.0.2"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` asking the kernel to send `sig` to the child when this process dies (Linux).

    Why: children run in their own sessions (so Ctrl-C reaches only the demo, which stops them in
    order), which also means nothing stops them if the demo is SIGKILLed. The death signal is tied to
    the thread that forks, so call this from the main thread. If the demo died before the child set it
    up, the child exits at once. Returns None (no hook) where prctl does not exist.
    """
    if _LIBC is None:
        return None
    parent, libc = os.getpid(), _LIBC

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return arm


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _recorded_dir() -> Path:
    import snmpsim_data  # a data-only wheel: its location is all we need

    return Path(snmpsim_data.__file__).parent / "data"


def start_snmpsim(
    data_dir: Path, workdir: Path, port: int, also: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """Starts snmpsim on 127.0.0.1:port (and on port of each address in `also`) and waits until it answers.

    snmpsim refuses root unless SNMPSIM_ALLOW_ROOT=true; dropping to `nobody` instead would lose access
    to an interpreter living under /root. A just-started snmpsim drops early requests, hence the
    retried readiness GET.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "snmpsim.log").open("wb")
    proc = subprocess.Popen(
        [
            str(BIN / "snmpsim-command-responder"),
            f"--data-dir={data_dir}",
            f"--cache-dir={workdir / 'cache'}",
            f"--agent-udpv4-endpoint=127.0.0.1:{port}",
            *(f"--agent-udpv4-endpoint={address}:{port}" for address in also),
            "--max-var-binds=128",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent(),
        env={**os.environ, "SNMPSIM_ALLOW_ROOT": "true"},
    )
    community = next(data_dir.glob("*.snmprec")).stem
    subprocess.run(
        ["snmpget", "-v2c", "-c", community, "-t", "1", "-r", "60", f"127.0.0.1:{port}", "1.3.6.1.2.1.1.3.0"],
        capture_output=True,
        timeout=90,
    )
    return proc


def start_sushy_static(tree: Path, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """Starts sushy-static serving a Redfish mockup tree and waits for its port."""
    log = (workdir / "sushy-static.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "sushy-static"), "-i", "127.0.0.1", "-p", str(port), "-m", str(tree)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent(),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc


def start_demo_devices(
    workdir: Path, started: list[subprocess.Popen[bytes]], lab_only: bool = False
) -> list[dict[str, object]]:
    """Starts the demo peers under `workdir`, adding each process to `started` at once (so an interrupted
    start still stops what it started); returns the agent device configs. `lab_only` leaves out the
    recorded devices (they take snmpsim a while to index)."""
    data = workdir / "snmp-data"
    data.mkdir(parents=True, exist_ok=True)
    recorded = {} if lab_only else RECORDED
    for stale in data.glob("*.snmprec"):  # a community snmpsim serves is one the agent polls, no more
        if stale.stem not in (*recorded.values(), LAB):
            stale.unlink()
    for rel, community in recorded.items():
        plain, packed = _recorded_dir() / f"{rel}.snmprec", _recorded_dir() / f"{rel}.snmprec.bz2"
        dest = data / f"{community}.snmprec"
        if not dest.exists():
            dest.write_bytes(plain.read_bytes() if plain.exists() else bz2.decompress(packed.read_bytes()))
    shutil.copyfile(FIXTURES / "snmprec" / f"{LAB}.snmprec", data / f"{LAB}.snmprec")
    tree = workdir / "redfish"
    # Fresh each run: the temperature fault rewrites files in it, and a killed demo may have left one hot.
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(FIXTURES / "redfish" / REDFISH_TREE, tree)
    snmp_port, http_port = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    started.append(start_snmpsim(data, workdir / "snmpsim", snmp_port, also=(LAB_ADDRESS,)))
    started.append(start_sushy_static(tree, workdir, http_port))
    devices: list[dict[str, object]] = [
        {
            "kind": "snmp",
            "name": community,
            "address": LAB_ADDRESS if community == LAB else "127.0.0.1",
            "port": snmp_port,
            "community": community,
            "interval_s": 30,
            "timeout_s": 5,
        }
        for community in [*recorded.values(), LAB]
    ]
    devices.append(
        # every 10 s, so the temperature fault's climb shows as a curve, not three points
        {"kind": "redfish", "name": BMC, "url": f"http://127.0.0.1:{http_port}", "interval_s": 10}
    )
    return devices


if __name__ == "__main__":
    import json
    import signal

    processes: list[subprocess.Popen[bytes]] = []
    workdir = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/outpost-demo-devices")
    configs = start_demo_devices(workdir, processes)
    print(json.dumps(configs, indent=1))
    try:
        signal.pause()
    finally:
        for p in processes:
            os.killpg(p.pid, signal.SIGTERM)
