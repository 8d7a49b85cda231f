"""Real services as subprocess fixtures: start on a free port, wait for log line and port, stop by PID."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port the kernel just handed out on 127.0.0.1 (TCP by default, UDP with SOCK_DGRAM)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signals the whole process group (services may fork) and reaps the child."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        self.kill(signal.SIGTERM)


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
        )
    svc = Service(name, proc, log_path, port)
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
