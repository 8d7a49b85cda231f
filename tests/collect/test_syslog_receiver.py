"""The syslog receiver against real senders: util-linux `logger` over UDP, TCP (LF and octet counting),
a TLS client with a test CA, and many raw TCP senders at once; its bounds drop and count."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.collect.syslog.config import SyslogConfig, SyslogTlsConfig
from agent.collect.syslog.records import device_addresses
from agent.collect.syslog.server import SyslogReceiver
from hub.identity import pki
from shared.model import LogRecord

pytestmark = pytest.mark.integration

HOST = socket.gethostname()
Start = Callable[..., Awaitable[SyslogReceiver]]


@pytest.fixture
async def start_receiver() -> AsyncIterator[Start]:
    """Starts receivers on 127.0.0.1 ephemeral ports; closes them all at the end."""
    started: list[SyslogReceiver] = []

    async def start(devices: dict[str, str] | None = None, **overrides: Any) -> SyslogReceiver:
        cfg = {"enabled": True, "udp_listen": "127.0.0.1:0", "tcp_listen": "127.0.0.1:0", **overrides}
        receiver = SyslogReceiver(SyslogConfig(**cfg), devices=devices)
        started.append(receiver)
        await receiver.start()
        return receiver

    yield start
    for r in started:
        await r.aclose()


async def logger(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("logger", *args)
    assert await asyncio.wait_for(proc.wait(), 10) == 0


async def take(receiver: SyslogReceiver, n: int, timeout: float = 10.0) -> list[LogRecord]:
    """Exactly `n` records (fails on fewer within `timeout`; more are left queued and checked by callers)."""
    out: list[LogRecord] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out += await receiver.take(n - len(out))
    return out


async def test_logger_rfc5424_over_udp_arrives_with_every_field(start_receiver: Start) -> None:
    r = await start_receiver()
    await logger(
        "--rfc5424=notq", "-n", "127.0.0.1", "-P", str(r.udp_port), "--udp", "-t", "myapp", "--msgid", "ID7",
        "--sd-id", "x@1", "--sd-param", 'a="b"', "-p", "local3.err", "héllo wörld ✓",
    )  # fmt: skip
    [rec] = await take(r, 1)
    assert (rec.facility, rec.severity, rec.host, rec.app, rec.msgid) == (19, 3, HOST, "myapp", "ID7")
    assert (rec.message, rec.structured_data, rec.procid) == ("héllo wörld ✓", '[x@1 a="b"]', "")
    assert rec.device == HOST  # no configured device for 127.0.0.1: the host the message names
    assert abs(rec.ts_ms - rec.received_ms) < 5_000
    assert r.stats.received == {"udp": 1}


@pytest.mark.parametrize("framing", [[], ["--octet-count"]], ids=["lf", "octet-count"])
async def test_logger_over_tcp_in_both_framings(start_receiver: Start, framing: list[str]) -> None:
    r = await start_receiver(devices={"127.0.0.1": "edge-sw"})
    port = str(r.tcp_port)
    await logger("--rfc5424", "-n", "127.0.0.1", "-P", port, "--tcp", *framing, "-t", "tapp", "first")
    await logger("--rfc3164", "-n", "127.0.0.1", "-P", port, "--tcp", *framing, "-i", "-t", "bsd", "second")
    first, second = await take(r, 2)
    assert (first.app, first.message, first.severity, first.host) == ("tapp", "first", 5, HOST)
    assert first.structured_data.startswith("[timeQuality ")
    assert (second.app, second.message, second.host, second.procid.isdigit()) == ("bsd", "second", HOST, True)
    assert first.device == second.device == "edge-sw"  # the configured name for the sender's address
    assert r.stats.received == {"tcp": 2} and r.stats.closed_connections == {}


def test_device_names_come_from_snmp_addresses_and_redfish_urls_unless_shared() -> None:
    class D:
        def __init__(self, name: str, **kw: str) -> None:
            self.name = name
            self.__dict__.update(kw)

    devices = [D("sw1", address="10.0.0.1"), D("bmc1", url="https://10.0.0.9/"), D("host")]
    devices += [D("sim-a", address="10.0.0.5"), D("sim-b", address="10.0.0.5")]
    assert device_addresses(devices) == {"10.0.0.1": "sw1", "10.0.0.9": "bmc1"}


async def test_an_over_long_message_is_cut_and_counted(start_receiver: Start) -> None:
    r = await start_receiver(max_message_bytes=480)
    _, writer = await asyncio.open_connection("127.0.0.1", r.tcp_port)
    writer.write(b"<13>Dec  2 10:00:00 sw1 app: " + b"z" * 2000 + b"\n<13>Dec  2 10:00:01 sw1 app: ok\n")
    await writer.drain()
    long, short = await take(r, 2)
    writer.close()
    assert len(long.message.encode()) == 480 - len(b"<13>Dec  2 10:00:00 sw1 app: ")
    assert short.message == "ok" and r.stats.truncated == 1


async def test_a_sender_over_its_rate_limit_loses_the_excess_and_it_is_counted(start_receiver: Start) -> None:
    r = await start_receiver(rate_per_source=0.01, burst_per_source=5)
    _, writer = await asyncio.open_connection("127.0.0.1", r.tcp_port)
    writer.write(b"".join(b"<13>msg %d\n" % i for i in range(20)))
    await writer.drain()
    got = await take(r, 5)
    await asyncio.sleep(0.3)
    writer.close()
    assert [x.message for x in got] == [f"<13>msg {i}"[4:] for i in range(5)]
    assert r.take_nowait(100) == [] and r.stats.dropped == {"rate_limited": 15}


async def test_connections_past_the_limit_are_refused_and_idle_ones_closed(
    start_receiver: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent.collect.syslog.server")
    r = await start_receiver(max_connections=1, idle_timeout_s=0.5)
    reader1, writer1 = await asyncio.open_connection("127.0.0.1", r.tcp_port)
    writer1.write(b"<13>hold\n")
    await take(r, 1)
    reader2, writer2 = await asyncio.open_connection("127.0.0.1", r.tcp_port)
    assert await asyncio.wait_for(reader2.read(), 5) == b""  # closed at once
    assert await asyncio.wait_for(reader1.read(), 5) == b""  # closed after 0.5 s of silence
    assert r.stats.refused_connections == {"max_connections": 1}
    assert r.stats.closed_connections == {"idle": 1} and r.stats.open_connections == 0
    _, writer3 = await asyncio.open_connection("127.0.0.1", r.tcp_port)  # a slot is free again
    writer3.write(b"<13>again\n")
    await take(r, 1)
    writer3.close()
    told = [m for m in caplog.messages if "syslog connection slots" in m]
    assert len(told) == 2 and "refusing" in told[0] and "back after" in told[1]
    writer1.close()
    writer2.close()


async def test_a_broken_octet_count_closes_that_connection_only(start_receiver: Start) -> None:
    r = await start_receiver()
    reader, writer = await asyncio.open_connection("127.0.0.1", r.tcp_port)
    writer.write(b"6 <13>ok7x <13>bad")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    [ok] = await take(r, 1)
    assert ok.message == "ok" and r.stats.closed_connections == {"framing_error": 1}
    writer.close()


def _tls_files(root: Path) -> tuple[pki.CaPaths, SyslogTlsConfig]:
    ca = pki.CaPaths(root / "ca")
    pki.init_ca(ca, "Syslog Test CA")
    pki.write_pair(
        pki.issue(ca, "collector", server_names=("localhost",)), root / "srv.pem", root / "srv.key"
    )
    cfg = SyslogTlsConfig(
        listen="127.0.0.1:0", cert_file=root / "srv.pem", key_file=root / "srv.key", ca_file=ca.cert
    )
    return ca, cfg


async def test_tls_with_a_client_certificate_from_the_ca_is_heard_and_others_refused(
    start_receiver: Start, tmp_path: Path
) -> None:
    ca, tls = _tls_files(tmp_path)
    r = await start_receiver(tls=tls)
    pki.write_pair(pki.issue(ca, "router"), tmp_path / "cli.pem", tmp_path / "cli.key")
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    ctx.load_cert_chain(str(tmp_path / "cli.pem"), str(tmp_path / "cli.key"))
    _, writer = await asyncio.open_connection("127.0.0.1", r.tls_port, ssl=ctx, server_hostname="localhost")
    msg = b"<34>1 2026-12-02T10:00:00.5Z core-rtr sshd 42 AUTH - failed password for root"
    writer.write(str(len(msg)).encode() + b" " + msg)
    await writer.drain()
    [rec] = await take(r, 1)
    writer.close()
    assert (rec.host, rec.app, rec.procid, rec.msgid, rec.severity, rec.facility) == (
        "core-rtr", "sshd", "42", "AUTH", 2, 4,
    )  # fmt: skip
    assert rec.ts_ms == datetime(2026, 12, 2, 10, 0, 0, 500_000, UTC).timestamp() * 1000
    assert rec.message == "failed password for root"
    anonymous = ssl.create_default_context(cafile=str(ca.cert))  # no client certificate
    with pytest.raises((ssl.SSLError, ConnectionError)):
        rd, wr = await asyncio.open_connection(
            "127.0.0.1", r.tls_port, ssl=anonymous, server_hostname="localhost"
        )
        wr.write(b"5 <13>x")
        await wr.drain()
        assert await asyncio.wait_for(rd.read(), 5) == b""
        raise ConnectionError("closed without a record")
    await asyncio.sleep(0.2)
    assert r.stats.received == {"tls": 1} and r.stats.refused_connections == {"tls_handshake": 1}


async def test_many_senders_at_once_lose_nothing_and_counts_are_exact(start_receiver: Start) -> None:
    senders, each = 40, 250
    r = await start_receiver(queue_size=senders * each, burst_per_source=senders * each)

    async def send(i: int) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", r.tcp_port)
        for j in range(0, each, 50):
            writer.write(b"".join(b"<13>1 - h%d app - - - %d.%d\n" % (i, i, k) for k in range(j, j + 50)))
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(send(i) for i in range(senders)))
    got = await take(r, senders * each)
    assert sorted(x.message for x in got) == sorted(f"{i}.{k}" for i in range(senders) for k in range(each))
    assert {x.host for x in got} == {f"h{i}" for i in range(senders)}
    assert r.stats.received == {"tcp": senders * each} and r.stats.dropped == {}


async def test_a_full_queue_drops_the_newest_and_counts_them(start_receiver: Start) -> None:
    r = await start_receiver(queue_size=3)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(10):
        sock.sendto(b"<13>n%d" % i, ("127.0.0.1", r.udp_port))
    sock.close()
    async with asyncio.timeout(5):
        while sum(r.stats.received.values()) < 10:
            await asyncio.sleep(0.02)
    assert [x.message for x in r.take_nowait(10)] == ["n0", "n1", "n2"]
    assert r.stats.dropped == {"queue_full": 7}
