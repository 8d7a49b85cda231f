"""The SNMP collector against snmpsim serving real recorded devices and lab devices whose values we set."""

from __future__ import annotations

import pytest

from agent.collect.snmp.collector import SnmpCollector
from agent.collect.snmp.config import SnmpConfig
from agent.collect.snmp.errors import SnmpTimeout
from shared.clock import FakeClock
from shared.model import MetricKind, SeriesKey
from tests.collect.conftest import SnmpPeer
from tests.collect.snapshot import assert_snapshot

pytestmark = pytest.mark.integration

IF_IN_OCTETS = "1.3.6.1.2.1.2.2.1.10.1"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6.1"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"


def collector(peer_port: int, community: str, clock: FakeClock, **extra: object) -> SnmpCollector:
    cfg = SnmpConfig.model_validate(
        {
            "name": community,
            "address": "127.0.0.1",
            "port": peer_port,
            "community": community,
            "timeout_s": 5,
            "retries": 0,
            **extra,
        }
    )
    return SnmpCollector(cfg, clock=clock)


def lab_records(uptime: int, in32: int, in64: int) -> dict[str, tuple[int, object]]:
    return {
        "1.3.6.1.2.1.1.2.0": (6, "1.3.6.1.4.1.99999.1.1"),
        SYS_UPTIME: (67, uptime),
        "1.3.6.1.2.1.2.2.1.2.1": (4, "eth0"),
        "1.3.6.1.2.1.2.2.1.2.2": (4, "eth1"),
        IF_IN_OCTETS: (65, in32),
        "1.3.6.1.2.1.2.2.1.10.2": (65, in32),
        "1.3.6.1.2.1.31.1.1.1.1.1": (4, "eth0"),
        IF_HC_IN_OCTETS: (70, in64),
        "1.3.6.1.2.1.31.1.1.1.18.1": (4, "uplink to spine-1"),
    }


def rate_of(result_samples: list, metric: str, interface: str) -> float | None:  # type: ignore[type-arg]
    for s in result_samples:
        if s.key.metric == metric and s.key.label("interface") == interface:
            assert s.kind is MetricKind.RATE
            return float(s.value)
    return None


@pytest.mark.parametrize(
    ("community", "profile", "unprofiled"),
    [
        ("cisco-c3560", "cisco", False),
        ("arista-7150s", "arista", False),
        ("apc-8932", "apc-rpdu", False),
        ("eaton-93e", "eaton", False),
    ],
)
async def test_recorded_device_matches_its_profile_and_yields_the_snapshot_samples(
    snmpsim: SnmpPeer, community: str, profile: str, unprofiled: bool
) -> None:
    clock = FakeClock()
    c = collector(snmpsim.port, community, clock)
    try:
        first = await c.collect()
        await clock.advance(60)
        second = await c.collect()
    finally:
        await c.aclose()
    assert (c.profile_name, c.unprofiled) == (profile, unprofiled)
    assert first.errors == [] and second.errors == []
    assert not any(s.kind is MetricKind.RATE for s in first.samples)  # first poll: no rates yet
    assert_snapshot(f"snmp-{community}", second)


async def test_unprofiled_device_is_reported_with_the_generic_profile(snmpsim: SnmpPeer) -> None:
    snmpsim.write_device("lab-counters", lab_records(100_000, 1000, 1000))
    c = collector(snmpsim.port, "lab-counters", FakeClock())
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    flag = [s for s in result.samples if s.key.metric == "snmp_device_unprofiled"]
    assert [(s.key.label("profile"), s.value) for s in flag] == [("generic", 1.0)]


async def test_eaton_ups_battery_comes_from_its_own_mib_over_ups_mib(snmpsim: SnmpPeer) -> None:
    c = collector(snmpsim.port, "eaton-93e", FakeClock())
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    ups = {s.key.metric: s.value for s in result.samples if s.key.metric.startswith("ups_battery")}
    assert ups == {
        "ups_battery_status": 2.0,
        "ups_battery_on_battery_seconds": 0.0,
        "ups_battery_runtime_seconds": 65535.0,  # xupsBatTimeRemaining; UPS-MIB says 1092 min
        "ups_battery_charge_percent": 100.0,
        "ups_battery_voltage_volts": 521.0,
        "ups_battery_temperature_celsius": 25.0,
    }


async def test_cisco_temperature_threshold_becomes_a_limit(snmpsim: SnmpPeer) -> None:
    c = collector(snmpsim.port, "cisco-c3560", FakeClock())
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    key = SeriesKey.of("hw_temperature_celsius", {"index": "1005", "sensor": "SW#1, Sensor#1, YELLOW"})
    assert [s.value for s in result.samples if s.key == key] == [61.0]
    assert result.limits[key].crit_high == 66.0


async def test_counters_become_rates_across_32_and_64_bit_wraps_and_a_reboot(snmpsim: SnmpPeer) -> None:
    clock = FakeClock()
    c = collector(snmpsim.port, "lab-counters", clock)
    try:
        snmpsim.write_device("lab-counters", lab_records(100_000, 2**32 - 1000, 2**64 - 500))
        first = await c.collect()
        assert rate_of(first.samples, "net_if_receive_bytes_per_second", "eth0") is None

        await clock.advance(10)
        snmpsim.write_device("lab-counters", lab_records(101_000, 1000, 1500))  # both counters wrapped
        wrapped = await c.collect()
        # 64-bit column preferred for eth0 (HC), 32-bit fallback for eth1
        assert rate_of(wrapped.samples, "net_if_receive_bytes_per_second", "eth0") == 200.0
        assert rate_of(wrapped.samples, "net_if_receive_bytes_per_second", "eth1") == 200.0

        await clock.advance(10)
        snmpsim.write_device("lab-counters", lab_records(500, 10, 20))  # rebooted: uptime went back
        rebooted = await c.collect()
        assert rate_of(rebooted.samples, "net_if_receive_bytes_per_second", "eth0") is None
        assert rate_of(rebooted.samples, "net_if_receive_bytes_per_second", "eth1") is None
        assert [e.kind for e in rebooted.events] == ["snmp.restart"]

        await clock.advance(10)
        snmpsim.write_device("lab-counters", lab_records(1500, 1010, 1020))
        after = await c.collect()
        assert rate_of(after.samples, "net_if_receive_bytes_per_second", "eth0") == 100.0
        assert rate_of(after.samples, "net_if_receive_bytes_per_second", "eth1") == 100.0
    finally:
        await c.aclose()


async def test_a_table_walk_error_still_publishes_what_the_poll_read(snmpsim: SnmpPeer) -> None:
    c = collector(snmpsim.port, "lab-errors", FakeClock())
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    assert result.errors and all("error status 5" in e for e in result.errors)  # genError
    metrics = {s.key.metric for s in result.samples}
    assert {"snmp_uptime_seconds", "snmp_device_unprofiled"} <= metrics


async def test_a_black_holed_device_raises_a_timeout(black_hole: int) -> None:
    cfg = SnmpConfig(
        name="dark", address="127.0.0.1", port=black_hole, community="public", timeout_s=0.2, retries=0
    )
    c = SnmpCollector(cfg, clock=FakeClock())
    try:
        with pytest.raises(SnmpTimeout) as info:
            await c.collect()
    finally:
        await c.aclose()
    assert isinstance(info.value, TimeoutError) and "public" not in str(info.value)
