"""SNMPv3 against Debian snmpd (all auth/priv protocols, engine reboot) and traps sent with snmptrap."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from agent.collect.snmp.collector import SnmpCollector
from agent.collect.snmp.config import SnmpConfig, TrapConfig
from agent.collect.snmp.errors import SnmpAuthError
from agent.collect.traps import TrapReceiver, trap_sources
from shared.clock import FakeClock
from shared.model import CollectResult, Severity
from tests.collect.conftest import AUTH_KEY, COMMUNITY, PRIV_KEY, SnmpdPeer

pytestmark = pytest.mark.integration

OURS = {
    "MD5": "md5",
    "SHA": "sha",
    "SHA-224": "sha224",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
    "DES": "des",
    "AES": "aes128",
    "AES-192": "aes192",
    "AES-256": "aes256",
}
USERS = [
    ("u-md5-des", "MD5", "DES"),
    ("u-sha-aes", "SHA", "AES"),
    ("u-sha224", "SHA-224", None),
    ("u-sha256-aes", "SHA-256", "AES"),
    ("u-sha384-aes192", "SHA-384", "AES-192"),
    ("u-sha512-aes256", "SHA-512", "AES-256"),
    ("u-noauth", None, None),
]


def v3_config(
    port: int, user: str, auth: str | None, priv: str | None, auth_key: str = AUTH_KEY
) -> SnmpConfig:
    usm: dict[str, object] = {"username": user}
    if auth:
        usm |= {"auth_protocol": OURS[auth], "auth_key": auth_key}
    if priv:
        usm |= {"priv_protocol": OURS[priv], "priv_key": PRIV_KEY}
    return SnmpConfig.model_validate(
        {
            "name": "snmpd",
            "address": "127.0.0.1",
            "port": port,
            "version": 3,
            "usm": usm,
            "timeout_s": 1,
            "retries": 0,
        }
    )


@pytest.mark.parametrize(("user", "auth", "priv"), USERS)
async def test_v3_user_with_each_auth_and_priv_protocol_reads_the_device(
    snmpd: SnmpdPeer, user: str, auth: str | None, priv: str | None
) -> None:
    c = SnmpCollector(v3_config(snmpd.port, user, auth, priv), clock=FakeClock())
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    assert result.errors == []
    assert c.profile_name == "net-snmp"  # Debian snmpd: sysObjectID 1.3.6.1.4.1.8072.3.2.10
    assert any(
        s.key.metric == "net_if_oper_status" and s.key.label("interface") == "lo" for s in result.samples
    )


async def test_v2c_community_reads_debian_snmpd(snmpd: SnmpdPeer) -> None:
    cfg = SnmpConfig(name="snmpd", address="127.0.0.1", port=snmpd.port, community=COMMUNITY, timeout_s=1)
    c = SnmpCollector(cfg, clock=FakeClock())
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    assert result.errors == [] and any(s.key.metric == "device_storage_size_bytes" for s in result.samples)


async def test_wrong_v3_key_is_an_auth_error_that_never_shows_the_key(snmpd: SnmpdPeer) -> None:
    c = SnmpCollector(
        v3_config(snmpd.port, "u-sha-aes", "SHA", "AES", auth_key="wrong-pass-999"), clock=FakeClock()
    )
    try:
        with pytest.raises(SnmpAuthError) as info:
            await c.collect()
    finally:
        await c.aclose()
    assert "wrong-pass-999" not in str(info.value) and PRIV_KEY not in str(info.value)


async def test_v3_engine_is_rediscovered_after_the_agent_restarts_with_new_boots(snmpd: SnmpdPeer) -> None:
    clock = FakeClock()
    c = SnmpCollector(v3_config(snmpd.port, "u-sha256-aes", "SHA-256", "AES"), clock=clock)
    try:
        before = await c.collect()
        snmpd.restart()
        await clock.advance(60)
        after = await c.collect()
        await clock.advance(60)
        later = await c.collect()
    finally:
        await c.aclose()
    assert before.errors == after.errors == later.errors == []
    assert c.engine_resets == 1
    assert {s.key for s in before.samples} <= {s.key for s in after.samples}


async def wait_for(results: list[CollectResult], n: int) -> None:
    for _ in range(200):
        if len(results) >= n:
            return
        await asyncio.sleep(0.02)


async def test_traps_of_v1_v2c_and_v3_become_events_of_the_device_configured_at_the_sender() -> None:
    engine_id = "0x8000000001020304"
    cfg = TrapConfig.model_validate(
        {
            "enabled": True,
            "listen": "127.0.0.1:0",
            "communities": ["trap-secret"],
            "v3_users": [
                {
                    "username": "trapper",
                    "auth_protocol": "sha",
                    "auth_key": AUTH_KEY,
                    "priv_protocol": "aes128",
                    "priv_key": PRIV_KEY,
                    "engine_id": engine_id,
                }
            ],
        }
    )
    devices = [
        SnmpConfig(name="ups-7", address="127.0.0.2", community="c"),
        # one address, two devices (a simulator serving two communities): which one sent is unknown
        SnmpConfig(name="sw-a", address="127.0.0.3", community="a"),
        SnmpConfig(name="sw-b", address="127.0.0.3", community="b"),
    ]
    assert trap_sources(devices) == {"127.0.0.2": "ups-7"}
    got: list[CollectResult] = []
    rx = TrapReceiver(cfg, got.append, devices=trap_sources(devices))
    await rx.start()
    try:
        port = rx.port
        link_down = ["1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.7", "i", "7"]
        await asyncio.to_thread(
            subprocess.run,
            ["snmptrap", "-v2c", "-c", "trap-secret", f"127.0.0.1:{port}", "", *link_down],
            check=True,
            capture_output=True,
        )
        await asyncio.to_thread(
            subprocess.run,
            [
                "snmptrap",
                "--clientaddr=127.0.0.2",
                "-v1",
                "-c",
                "trap-secret",
                f"127.0.0.1:{port}",
                "1.3.6.1.4.1.8072.2.3",
                "127.0.0.1",
                "6",
                "17",
                "",
                "1.3.6.1.2.1.1.5.0",
                "s",
                "ups-7",
            ],
            check=True,
            capture_output=True,
        )
        await asyncio.to_thread(
            subprocess.run,
            [
                "snmptrap",
                "--clientaddr=127.0.0.3",
                "-v3",
                "-e",
                engine_id,
                "-u",
                "trapper",
                "-l",
                "authPriv",
                "-a",
                "SHA",
                "-A",
                AUTH_KEY,
                "-x",
                "AES",
                "-X",
                PRIV_KEY,
                f"127.0.0.1:{port}",
                "",
                "1.3.6.1.6.3.1.1.5.1",
            ],
            check=True,
            capture_output=True,
        )
        await asyncio.to_thread(
            subprocess.run,
            ["snmptrap", "-v2c", "-c", "not-our-community", f"127.0.0.1:{port}", "", *link_down],
            check=True,
            capture_output=True,
        )
        await wait_for(got, 3)
        await asyncio.sleep(0.3)  # the unknown community must not arrive late either
    finally:
        await rx.aclose()
    events = [r.events[0] for r in got]
    assert [(e.kind, e.message, dict(e.attributes)["version"]) for e in events] == [
        ("snmp.trap", "linkDown", "2c"),
        ("snmp.trap", "1.3.6.1.4.1.8072.2.3.0.17", "1"),
        ("snmp.trap", "coldStart", "3"),
    ]
    assert (
        events[0].severity is Severity.WARNING and dict(events[0].attributes)["1.3.6.1.2.1.2.2.1.1.7"] == "7"
    )
    assert dict(events[1].attributes)["1.3.6.1.2.1.1.5.0"] == "ups-7"
    senders = [(r.target, r.events[0].source, dict(r.events[0].attributes)["source_address"]) for r in got]
    assert senders == [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("ups-7", "ups-7", "127.0.0.2"),
        ("127.0.0.3", "127.0.0.3", "127.0.0.3"),
    ]
    assert rx.stats.received == 3
