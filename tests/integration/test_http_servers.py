"""The enrollment listener (Starlette on uvicorn, TLS) and the agent's telemetry server (aiohttp) on real
sockets: limits, timeouts and bad input get a 4xx or a closed connection, never a hung socket."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from agent.enroll.enroll import enroll
from agent.telemetry import AgentMetrics, TelemetryServer
from hub.identity import pki
from hub.identity.db import EnrollState
from hub.identity.models import tokens
from hub.identity.server import MAX_BODY, EnrollServer
from hub.identity.service import EnrollService
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0


@dataclass
class Exchange:
    """What came back on a raw connection, and how long until the server closed it."""

    data: bytes
    closed_after_s: float

    @property
    def status(self) -> int:
        return int(self.data.split(b" ", 2)[1]) if self.data.startswith(b"HTTP/1.") else 0


def _exchange(
    port: int, parts: list[bytes], *, tls: bool, pause_s: float = 0.0, wait_s: float = 10
) -> Exchange:
    """Sends `parts` (pausing `pause_s` after each) and reads until the server closes or `wait_s` passes."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=wait_s)
    sock: socket.socket = raw
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        sock = ctx.wrap_socket(raw, server_hostname="localhost")
    began = time.monotonic()
    data = b""
    try:
        for part in parts:
            sock.sendall(part)
            time.sleep(pause_s)
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionError, ssl.SSLError):
        pass
    finally:
        sock.close()
    return Exchange(data, time.monotonic() - began)


@dataclass
class EnrollHub:
    server: EnrollServer
    service: EnrollService
    engine: sa.Engine
    ca: pki.CaPaths
    state: EnrollState

    @property
    def address(self) -> str:
        return f"localhost:{self.server.port}"


@pytest.fixture
async def enroll_hub(tmp_path: Path) -> AsyncIterator[EnrollHub]:
    ca = pki.CaPaths(tmp_path / "pki")
    pki.init_ca(ca)
    cert, key = tmp_path / "pki" / "hub.pem", tmp_path / "pki" / "hub.key"
    pki.write_pair(pki.issue(ca, "outpost-hub", server_names=("localhost",), days=1), cert, key)
    engine = migrated_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    state = EnrollState(engine)
    service = EnrollService(ca, state, 90)
    server = EnrollServer(
        service, "127.0.0.1:0", cert_file=cert, key_file=key, ca_file=ca.cert, timeout_s=TIMEOUT_S
    )
    await server.start()
    try:
        yield EnrollHub(server, service, engine, ca, state)
    finally:
        await server.aclose()
        engine.dispose()


def _post(length: int, body: bytes = b"") -> bytes:
    return (
        b"POST /v1/enroll HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-protobuf\r\n"
        + f"Content-Length: {length}\r\n\r\n".encode()
        + body
    )


async def test_enroll_body_declared_over_the_limit_is_answered_413_and_closed(enroll_hub: EnrollHub) -> None:
    got = await asyncio.to_thread(_exchange, enroll_hub.server.port, [_post(MAX_BODY + 1)], tls=True)
    assert got.status == 413
    assert got.data.endswith(b"body too large\n")
    assert b"connection: close" in got.data.lower()


async def test_enroll_chunked_body_that_grows_past_the_limit_is_answered_413(enroll_hub: EnrollHub) -> None:
    head = b"POST /v1/enroll HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"%x\r\n%s\r\n" % (16384, b"x" * 16384)
    got = await asyncio.to_thread(
        _exchange, enroll_hub.server.port, [head, *[chunk] * 5, b"0\r\n\r\n"], tls=True
    )
    assert got.status == 413


async def test_enroll_client_that_trickles_its_headers_is_disconnected_at_the_timeout(
    enroll_hub: EnrollHub,
) -> None:
    parts = [b"GET /v1/ca.pem HTTP/1.1\r\n", b"Host: localhost\r\n", b"X-Slow: 1\r\n", b"X-Slow: 2\r\n"]
    got = await asyncio.to_thread(_exchange, enroll_hub.server.port, parts, tls=True, pause_s=0.4)
    assert got.data == b""
    assert TIMEOUT_S <= got.closed_after_s < TIMEOUT_S + 2


async def test_enroll_body_that_stops_arriving_is_answered_408(enroll_hub: EnrollHub) -> None:
    got = await asyncio.to_thread(_exchange, enroll_hub.server.port, [_post(1000, b"x" * 10)], tls=True)
    assert got.status == 408
    assert TIMEOUT_S <= got.closed_after_s < TIMEOUT_S + 2


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET /v1/ca.pem HTTP/1.1\r\nHost: localhost\r\nContent-Length: nope\r\n\r\n", 400),
        (b"GET /v1/ca.pem HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET /v1/enroll HTTP/1.1\r\nHost: localhost\r\n\r\n", 405),
        (b"GET /v1/other HTTP/1.1\r\nHost: localhost\r\n\r\n", 404),
        (_post(5, b"\xff\xff\xff\xff\xff"), 400),
    ],
    ids=[
        "no-request-line",
        "bad-content-length",
        "huge-header",
        "wrong-method",
        "unknown-path",
        "not-protobuf",
    ],
)
async def test_enroll_bad_requests_get_a_4xx_and_a_closed_connection(
    enroll_hub: EnrollHub, raw: bytes, status: int
) -> None:
    got = await asyncio.to_thread(_exchange, enroll_hub.server.port, [raw], tls=True)
    assert got.status == status
    assert got.closed_after_s < TIMEOUT_S


async def test_enroll_serves_the_ca_and_enrolls_over_the_new_listener(
    enroll_hub: EnrollHub, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(verify=False) as client:
        r = await client.get(f"https://127.0.0.1:{enroll_hub.server.port}/v1/ca.pem")
    assert r.status_code == 200 and r.content == enroll_hub.ca.cert.read_bytes()
    assert r.headers["content-type"] == "application/x-pem-file"
    token = enroll_hub.service.create_token("dc1", 60, 1).token
    files = await asyncio.to_thread(enroll, enroll_hub.address, token, "rack1", tmp_path / "tls")
    assert files.cert_file.exists()


async def test_enroll_unexpected_failure_is_answered_500_and_logged_once_until_it_works_again(
    enroll_hub: EnrollHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = enroll_hub.service.create_token("dc1", 60, 5).token
    with enroll_hub.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE enroll_tokens"))
    caplog.set_level(logging.INFO, logger="hub.identity.server")
    for i in range(3):
        with pytest.raises(Exception, match="hub refused enrollment: internal error"):
            await asyncio.to_thread(enroll, enroll_hub.address, token, f"r{i}", tmp_path / f"r{i}")
    tokens.create(enroll_hub.engine)  # the table is back (empty): the next request works again, and says so
    with pytest.raises(Exception, match="unknown_token"):
        await asyncio.to_thread(enroll, enroll_hub.address, token, "r9", tmp_path / "r9")
    lines = [r.getMessage() for r in caplog.records if r.name == "hub.identity.server"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("enrollment down: OperationalError")
    assert lines[1].startswith("enrollment back after")
    assert token.split(".")[1] not in caplog.text


# --- the agent's telemetry server ---------------------------------------------------------------


@pytest.fixture
async def telemetry() -> AsyncIterator[tuple[TelemetryServer, dict[str, Any]]]:
    health: dict[str, Any] = {"status": "ok", "dead_stages": []}
    server = TelemetryServer("127.0.0.1:0", AgentMetrics(), lambda: dict(health), timeout_s=TIMEOUT_S)
    await server.start()
    try:
        yield server, health
    finally:
        await server.aclose()


async def test_agent_healthz_is_200_while_all_stages_run_and_503_when_one_is_dead(
    telemetry: tuple[TelemetryServer, dict[str, Any]],
) -> None:
    server, health = telemetry
    url = f"http://127.0.0.1:{server.port}/healthz"
    async with httpx.AsyncClient() as client:
        ok = await client.get(url)
        health.update(status="degraded", dead_stages=["flush"])
        dead = await client.get(url)
    assert (ok.status_code, ok.json()) == (200, {"status": "ok", "dead_stages": []})
    assert (dead.status_code, dead.json()) == (503, {"status": "degraded", "dead_stages": ["flush"]})


async def test_agent_metrics_are_prometheus_text_with_process_and_build_series(
    telemetry: tuple[TelemetryServer, dict[str, Any]],
) -> None:
    server, _ = telemetry
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{server.port}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert "process_resident_memory_bytes " in r.text
    assert "outpost_build_info{" in r.text and 'side="agent"' in r.text


async def test_agent_telemetry_client_that_trickles_its_headers_is_disconnected_at_the_timeout(
    telemetry: tuple[TelemetryServer, dict[str, Any]],
) -> None:
    server, _ = telemetry
    parts = [b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"X-Slow: 1\r\n", b"X-Slow: 2\r\n"]
    got = await asyncio.to_thread(_exchange, server.port, parts, tls=False, pause_s=0.4)
    assert got.data == b""
    assert TIMEOUT_S <= got.closed_after_s < TIMEOUT_S + 2.5


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 400),
        (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405),
        (b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
    ],
    ids=["no-request-line", "huge-header", "wrong-method", "unknown-path"],
)
async def test_agent_telemetry_bad_requests_get_a_4xx(
    telemetry: tuple[TelemetryServer, dict[str, Any]], raw: bytes, status: int
) -> None:
    server, _ = telemetry
    got = await asyncio.to_thread(_exchange, server.port, [raw], tls=False)
    assert got.status == status
    assert got.closed_after_s < TIMEOUT_S


async def test_agent_telemetry_survives_bad_requests_and_keeps_answering(
    telemetry: tuple[TelemetryServer, dict[str, Any]],
) -> None:
    server, _ = telemetry
    await asyncio.gather(
        *[
            asyncio.to_thread(_exchange, server.port, [b"\x00\xff garbage\r\n\r\n"], tls=False)
            for _ in range(20)
        ]
    )
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://127.0.0.1:{server.port}/healthz")).status_code == 200
