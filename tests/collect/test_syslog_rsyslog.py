"""A real rsyslog relays to the receiver: `logger` writes to rsyslog's imtcp, rsyslog forwards with omfwd
over TCP with octet counting (RFC 5424 template), and exactly the lines sent arrive, field by field."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.collect.syslog.config import SyslogConfig
from agent.collect.syslog.server import SyslogReceiver
from tests.collect.test_syslog_receiver import logger, take
from tests.support.procs import Service, free_port, start_service

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("rsyslogd") is None, reason="rsyslog not installed (make apt)"),
]

_CONFIG = """\
global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{listen}" ruleset="relay")
ruleset(name="relay") {{
  action(type="omfwd" target="127.0.0.1" port="{target}" protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format")
}}
"""


def start_rsyslog(root: Path, target_port: int) -> tuple[Service, int]:
    """rsyslogd in the foreground with a generated config; ready when its imtcp port accepts."""
    work = root / "rsyslog"
    work.mkdir(parents=True)
    listen = free_port()
    conf = work / "rsyslog.conf"
    conf.write_text(_CONFIG.format(work=work, listen=listen, target=target_port))
    cmd = ["rsyslogd", "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")]
    return start_service("rsyslogd", cmd, root / "logs", port=listen, timeout=20), listen


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[tuple[SyslogReceiver, int]]:
    receiver = SyslogReceiver(SyslogConfig(enabled=True, udp_listen=None, tcp_listen="127.0.0.1:0"))
    await receiver.start()
    rsyslog, port = start_rsyslog(tmp_path, receiver.tcp_port)
    try:
        yield receiver, port
    finally:
        rsyslog.stop()
        await receiver.aclose()


async def test_rsyslog_forwards_exactly_what_logger_sent(relay: tuple[SyslogReceiver, int]) -> None:
    receiver, port = relay
    sent = [
        ("--rfc5424=notq", "daemon.crit", "kernel", "CPU3 temperature above threshold"),
        ("--rfc5424=notq", "local0.info", "bgpd", "peer ✓ up"),
        ("--rfc3164", "mail.warning", "postfix", "queue full"),
    ]
    for rfc, prio, tag, text in sent:
        await logger(rfc, "-n", "127.0.0.1", "-P", str(port), "--tcp", "-p", prio, "-t", tag, text)
    got = await take(receiver, 3, timeout=20)
    host = socket.gethostname()
    assert [(r.facility, r.severity, r.host, r.app, r.message) for r in got] == [
        (3, 2, host, "kernel", "CPU3 temperature above threshold"),
        (16, 6, host, "bgpd", "peer ✓ up"),
        (2, 4, host, "postfix", "queue full"),
    ]
    assert receiver.stats.received == {"tcp": 3} and receiver.stats.closed_connections == {}
    await asyncio.sleep(0.2)
    assert receiver.take_nowait(10) == []  # nothing else: rsyslog's own messages stay in its default ruleset
