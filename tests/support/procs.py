"""Real services as subprocess fixtures: start on a free port, wait for log line and port, stop by PID.

No exit path of a test run leaves a service behind: fixtures stop theirs in `finally` (pytest-timeout's
default signal method fails the test from inside, so `finally` runs); every service still registered
when the interpreter exits is killed by an atexit hook (a test that forgot, an interrupted session);
and a service started from the main thread gets a parent-death signal from the kernel, for the exits
where no Python code runs (SIGKILL of pytest, pytest-timeout's thread method, which calls os._exit).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
# Services started and not yet stopped, by PID: what the atexit hook kills.
_RUNNING: dict[int, Service] = {}
_RUNNING_LOCK = threading.Lock()


# Fixed ports come from a range of this process's own, below the kernel's ephemeral range (32768+):
# under pytest-xdist a port freed by one worker's killed service is never handed to another worker's
# service, and the kernel never gives it to a client socket, while the killed service's clients may
# still be reconnecting to it. Each range is walked in order from a random start (other test runs on
# the machine walk theirs too), so a port is reused only after the rest of the range.
_PORT_BASE, _PORT_SPAN, _RANGES = 10000, 2500, 8
_port_lock = threading.Lock()
_port_next: dict[int, int] = {}


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) % _RANGES if worker[2:].isdigit() else random.randrange(_RANGES)


_PORT_LOW = _PORT_BASE + _worker_index() * _PORT_SPAN
_PORT_FIRST = _PORT_LOW + random.randrange(_PORT_SPAN)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free right now on 127.0.0.1 (TCP by default, UDP with SOCK_DGRAM), from this worker's range."""
    low = _PORT_LOW
    with _port_lock:
        for _ in range(_PORT_SPAN):
            port = _port_next.get(kind, _PORT_FIRST)
            _port_next[kind] = low + (port + 1 - low) % _PORT_SPAN
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free port in {low}..{low + _PORT_SPAN - 1}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Service:
    """A running subprocess whose combined output goes to `log_path`."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Waits until the service's output matches `pattern`; fails with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.log())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise TimeoutError(
            f"{self.name}: {pattern!r} not seen (rc={self.proc.poll()}):\n{self.log()[-3000:]}"
        )

    def kill(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
        """Signals the whole process group (services may fork), reaps the child; SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        with _RUNNING_LOCK:
            _RUNNING.pop(self.proc.pid, None)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        self.kill(signal.SIGTERM)


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGKILL the child when the starting thread dies (Linux).

    Only for the main thread: the signal follows the thread that forked, and a service started from a
    short-lived helper thread would die with that thread.
    """
    if _LIBC is None or threading.current_thread() is not threading.main_thread():
        return None
    parent, libc = os.getpid(), _LIBC

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the test process died before we got here
            os._exit(1)

    return arm


def running_services() -> list[Service]:
    """Services started here and not stopped yet."""
    with _RUNNING_LOCK:
        return list(_RUNNING.values())


@atexit.register
def stop_all_services() -> None:
    """Stops every service still registered (SIGTERM, SIGKILL after 3 s): nothing outlives the run."""
    for svc in running_services():
        svc.kill(signal.SIGTERM, timeout=3.0)


def start_service(
    name: str,
    cmd: Sequence[str],
    log_dir: Path,
    *,
    port: int | None = None,
    ready_log: str | None = None,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Service:
    """Starts `cmd` in its own process group; ready when `ready_log` is printed and `port` accepts.

    Raises TimeoutError (with the log tail) and kills the process if it does not get ready in time.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
    svc = Service(name, proc, log_path, port)
    with _RUNNING_LOCK:
        _RUNNING[proc.pid] = svc
    try:
        if ready_log:
            svc.wait_log(ready_log, timeout)
        if port is not None:
            deadline = time.monotonic() + timeout
            while not port_open(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise TimeoutError(f"{name}: port {port} not open:\n{svc.log()[-3000:]}")
                time.sleep(0.05)
    except BaseException:
        svc.kill()
        raise
    return svc
