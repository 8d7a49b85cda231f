"""`make run` behaves like a service: a closed terminal or a killed demo leaves no process behind, and a
run whose ports are taken refuses to start, saying which port and who holds it.

The real `packaging/demo.py` runs as a subprocess, trimmed through its own settings (state in tmp_path,
free ports, only the lab switch and the BMC as devices) so it starts in seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.support.procs import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "packaging" / "demo.py"
# What the trimmed demo runs: hub, agent, snmpsim (lab switch), sushy-static (BMC).
EXPECTED = ("outpost-hub", "outpost-agent", "snmpsim-command-responder", "sushy-static")


@dataclass
class Demo:
    proc: subprocess.Popen[bytes]
    state: Path
    out: Path
    api_port: int

    def output(self) -> str:
        return self.out.read_text(errors="replace")


def _env(state: Path, api_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "OUTPOST_DEMO_STATE": str(state),
        "OUTPOST_DEMO_API": f"127.0.0.1:{api_port}",
        "OUTPOST_DEMO_GRPC": f"127.0.0.1:{free_port()}",
        "OUTPOST_DEMO_TELEMETRY": f"127.0.0.1:{free_port()}",
        "OUTPOST_DEMO_DEVICES": "lab",
    }


def _start(tmp_path: Path, api_port: int | None = None) -> Demo:
    state, out = tmp_path / "state", tmp_path / "demo.out"
    api_port = api_port or free_port()
    with out.open("wb") as f:
        proc = subprocess.Popen(
            [sys.executable, str(DEMO)],
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(state, api_port),
            cwd=REPO,
            start_new_session=True,  # its own process group, as a terminal's foreground job is
        )
    return Demo(proc, state, out, api_port)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _children(demo: Demo) -> dict[int, str]:
    """pid -> program name of each process the demo started and that still runs."""
    try:
        kids = psutil.Process(demo.proc.pid).children()
    except psutil.NoSuchProcess:
        return {}
    out = {}
    for k in kids:
        try:
            cmd = k.cmdline()
        except psutil.Error:
            continue
        names = [Path(c).name for c in cmd[:2]]  # a console script runs as `python <script>`
        name = next((n for n in names if n in EXPECTED), None)
        if name is not None and k.status() != psutil.STATUS_ZOMBIE:
            out[k.pid] = name
    return out


def _wait_running(demo: Demo, timeout: float = 120) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(demo)
        if sorted(kids.values()) == sorted(EXPECTED):
            return kids
        assert demo.proc.poll() is None, demo.output()[-3000:]
        time.sleep(0.2)
    raise AssertionError(
        f"the demo did not start all of {EXPECTED}: {_children(demo)}\n{demo.output()[-3000:]}"
    )


def _wait_gone(pids: dict[int, str], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {p: n for p, n in pids.items() if _alive(p)}
        if not left:
            return {}
        time.sleep(0.1)
    return {p: n for p, n in pids.items() if _alive(p)}


@pytest.fixture
def demo_cleanup() -> Iterator[list[int]]:
    """Whatever a failed test leaves running (pids appended by the test) is killed by process group."""
    pids: list[int] = []
    try:
        yield pids
    finally:
        for pid in pids:
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_sighup_to_the_demo_stops_hub_agent_and_simulators_within_seconds(
    tmp_path: Path, demo_cleanup: list[int]
) -> None:
    demo = _start(tmp_path)
    demo_cleanup.append(demo.proc.pid)
    kids = _wait_running(demo)
    demo_cleanup.extend(kids)
    os.killpg(demo.proc.pid, signal.SIGHUP)  # what the terminal does to its foreground job on close
    assert demo.proc.wait(timeout=30) == 0, demo.output()[-3000:]
    assert _wait_gone(kids, timeout=5) == {}
    assert "Traceback" not in demo.output()


def test_a_sigkilled_demo_leaves_no_orphans(tmp_path: Path, demo_cleanup: list[int]) -> None:
    demo = _start(tmp_path)
    demo_cleanup.append(demo.proc.pid)
    kids = _wait_running(demo)
    demo_cleanup.extend(kids)
    demo.proc.kill()  # no handler runs: only the kernel's parent-death signal can stop the children
    demo.proc.wait(timeout=10)
    # the agent drains for up to 10 s towards a hub that is stopping too
    assert _wait_gone(kids, timeout=25) == {}


def test_a_taken_port_makes_the_demo_refuse_to_start_naming_the_port_and_its_holder(
    tmp_path: Path, demo_cleanup: list[int]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        began = time.monotonic()
        demo = _start(tmp_path, api_port=port)
        demo_cleanup.append(demo.proc.pid)  # SIGKILLed if it does start: its children die with it
        rc = demo.proc.wait(timeout=30)
        took = time.monotonic() - began
    out = demo.output()
    assert rc == 1, out
    assert f"port {port} (API, 127.0.0.1:{port}) is not free: Address already in use" in out
    assert f"held by pid {os.getpid()} (" in out
    assert "Outpost is running" not in out
    # nothing was started: no state written, no process mentions it
    assert not demo.state.exists()
    mentions = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(str(demo.state) in part for part in p.info["cmdline"] or [])
    ]
    assert mentions == []
    assert took < 15
