"""A test that times out leaves no hub behind, whichever way pytest-timeout ends it.

Each case is a real pytest run in a subprocess on a small test file that starts a real hub through
`tests.support.outpost.start_hub` and then sleeps past its timeout; afterwards the hub's PID must be
gone. Paths covered: `finally` under the signal method (the timeout is raised inside the test), the
atexit hook for a hub no fixture stops, and the kernel's parent-death signal under the thread method
(pytest-timeout calls os._exit there, so no Python cleanup runs at all).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# A hub starts in 2-3 s alone (imports included), 6 s and more beside other xdist workers; the test must
# time out after that.
TIMEOUT_S = 12

INNER = """
import os
import time
from pathlib import Path

from tests.support.outpost import start_hub

OUT = Path(os.environ["CLEANUP_OUT"])


def test_hub_stopped_in_finally(tmp_path):
    hub = start_hub(tmp_path)
    (OUT / "finally.pid").write_text(str(hub.service.pid))
    try:
        time.sleep(60)
    finally:
        (OUT / "finally.ran").write_text("yes")
        hub.stop()


def test_hub_nobody_stops(tmp_path):
    hub = start_hub(tmp_path)
    (OUT / "forgotten.pid").write_text(str(hub.service.pid))
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _run_inner(tmp_path: Path, method: str, test: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / f"out-{method}"
    out.mkdir()
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the repo's settings (markers, warnings)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            f"--timeout={TIMEOUT_S}",
            f"--timeout-method={method}",
            f"test_inner.py::{test}" if test else "test_inner.py",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "CLEANUP_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, out


def _pids(out: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in out.glob("*.pid")}


def _gone_within(pids: dict[str, int], seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids.values()):
        time.sleep(0.05)
    return {name: pid for name, pid in pids.items() if _alive(pid)}


def _kill_leftovers(pids: dict[str, int]) -> None:
    for pid in pids.values():
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_timed_out_tests_under_the_signal_method_leave_no_hub_via_finally_or_the_atexit_hook(
    tmp_path: Path,
) -> None:
    proc, out = _run_inner(tmp_path, "signal", "")
    pids = _pids(out)
    try:
        assert set(pids) == {"finally", "forgotten"}, proc.stdout[-3000:]
        assert "2 failed" in proc.stdout and proc.stdout.count("Timeout") >= 2, proc.stdout[-3000:]
        assert (out / "finally.ran").read_text() == "yes"  # the timeout was raised inside the test
        assert _gone_within(pids, 2) == {}
    finally:
        _kill_leftovers(pids)


def test_a_test_ended_by_the_thread_method_leaves_no_hub_either(tmp_path: Path) -> None:
    proc, out = _run_inner(tmp_path, "thread", "test_hub_stopped_in_finally")
    pids = _pids(out)
    try:
        assert set(pids) == {"finally"}, proc.stdout[-3000:]
        assert proc.returncode != 0 and "Timeout" in proc.stderr + proc.stdout
        assert not (out / "finally.ran").exists()  # os._exit: no finally, no atexit
        assert _gone_within(pids, 2) == {}
    finally:
        _kill_leftovers(pids)
