"""Starting real `outpost-hub` and `outpost-agent` processes for integration and e2e tests."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import yaml

from hub.identity import pki
from shared import codec
from shared.model import Batch
from tests.support.procs import Service, free_port, start_service

BIN = Path(sys.executable).parent


@dataclass
class HubHandle:
    """A running hub process and how to reach it."""

    service: Service
    data_dir: Path
    config_path: Path
    api_port: int
    grpc_port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def ca(self) -> pki.CaPaths:
        return pki.CaPaths(self.data_dir / "pki")

    def get(self, path: str, **params: Any) -> Any:
        """GET an API path with the admin token; fails the test on a non-2xx answer."""
        r = httpx.get(self.api_url + path, params=params, headers={"Authorization": f"Bearer {self.token}"})
        r.raise_for_status()
        return r.json()

    def issue_agent(self, name: str, out: Path, site: str = "default", days: float = 90) -> dict[str, str]:
        """Issues an agent certificate with the hub's CA; returns the agent config's `tls` section."""
        pair = pki.issue(self.ca, name, agent_uri=f"{site}/{name}", days=days)
        pki.write_pair(pair, out / f"{name}.pem", out / f"{name}.key")
        (out / "ca.pem").write_bytes(self.ca.cert.read_bytes())
        return {
            "ca_file": str(out / "ca.pem"),
            "cert_file": str(out / f"{name}.pem"),
            "key_file": str(out / f"{name}.key"),
        }

    def kill(self) -> None:
        self.service.kill()

    def stop(self) -> None:
        self.service.stop()


def start_hub(
    tmp: Path, name: str = "hub", extra: dict[str, Any] | None = None, ports: tuple[int, int] | None = None
) -> HubHandle:
    """Starts `outpost-hub run` with its data under `tmp/name`; ready when it logs `hub running`."""
    data_dir = tmp / name
    api_port, grpc_port = ports or (free_port(), free_port())
    cfg = {
        "data_dir": str(data_dir),
        "api": {"listen": f"127.0.0.1:{api_port}"},
        "grpc": {"listen": f"127.0.0.1:{grpc_port}"},
        **(extra or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = tmp / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    svc = start_service(
        name,
        [str(BIN / "outpost-hub"), "run", "--config", str(config_path)],
        tmp / "logs",
        port=api_port,
        ready_log=r"hub running",
        timeout=30,
    )
    return HubHandle(svc, data_dir, config_path, api_port, grpc_port)


def write_agent_config(path: Path, hub: HubHandle, tls: dict[str, str], **overrides: Any) -> Path:
    """Writes an agent.yaml pointing at `hub`; `overrides` replace top-level sections."""
    cfg: dict[str, Any] = {
        "data_dir": str(path.parent / (path.stem + "-data")),
        "hub": {"address": hub.grpc_address, "server_name": "localhost", "tls": tls},
        "devices": [{"kind": "host", "interval_s": 1}],
        "batch": {"max_age_s": 0.5},
        "telemetry": {"listen": f"127.0.0.1:{free_port()}"},
    }
    cfg.update(overrides)
    path.write_text(yaml.safe_dump(cfg))
    return path


def start_agent(config_path: Path, log_dir: Path, name: str = "agent") -> Service:
    return start_service(
        name,
        [str(BIN / "outpost-agent"), "run", "--config", str(config_path)],
        log_dir,
        ready_log=r"agent started",
        timeout=30,
    )


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Polls `predicate()` until it returns a truthy value; returns it or fails with `what`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def push_batches(hub: HubHandle, batches: Sequence[Batch], agent_uri: str) -> list[codec.PushResult]:
    """Sends `batches` one after another over mTLS gRPC as the agent `agent_uri` (a certificate issued by
    the hub's CA names it), as an agent's delivery does; the hub's answers in order."""
    name = agent_uri.rpartition("/")[2] or agent_uri
    pair = pki.issue(hub.ca, name, agent_uri=agent_uri)
    creds = grpc.ssl_channel_credentials(hub.ca.cert.read_bytes(), pair.key_pem, pair.cert_pem)

    async def send() -> list[codec.PushResult]:
        options = [("grpc.ssl_target_name_override", "localhost")]
        async with grpc.aio.secure_channel(hub.grpc_address, creds, options=options) as ch:
            push = ch.unary_unary(codec.PUSH_METHOD, request_serializer=bytes, response_deserializer=bytes)
            return [
                codec.parse_push_response(await push(codec.push_request(codec.encode(b)), timeout=10))
                for b in batches
            ]

    # On a thread of its own: the caller may be inside an event loop (Playwright's sync API runs one).
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, send()).result()
