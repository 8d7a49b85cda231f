"""The collector against the real device walks of `snmpsim-data`: profile coverage, sentinels and sanity
bounds, dead sensors, row naming, and complete SNMPv1 walks.

`make test` polls one recording per vendor family (the smallest of each); `make soak` polls all 116 and
requires >= 80 % of them to be matched by a vendor or device-kind profile (the generic fallback does not
count).
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.collect.snmp.collector import SnmpCollector
from agent.collect.snmp.config import SnmpConfig
from agent.collect.snmp.profiles import profiles_for
from agent.collect.snmp.sanity import in_bounds
from shared.clock import FakeClock
from shared.model import CollectResult, MetricKind, Sample
from tests.collect.conftest import SnmpPeer, snmp_get_cli, start_snmpsim
from tests.collect.recordings import all_recordings, materialize, profile_prefixes, vendor_metrics
from tests.support.procs import Service, free_port

pytestmark = pytest.mark.integration

# One recording per vendor family and device kind (the smallest of each), with the profile it must get.
# Trapeze (juniper-ac, juniper-wlc2800: 1.8M records each) is polled only by the soak test.
SAMPLE = {
    "UPS/huawei-gse200m": "net-snmp+ups-mib",
    "UPS/eaton-9px-partial": "eaton",
    "UPS/apc-7902b": "apc-rpdu",
    "camera/hikvision": "hikvision",
    "network/appliance/cisco-unknown-01": "cisco",
    "network/firewall/paloalto-pa-5000": "paloalto",
    "network/router/juniper-mx960-12-3r6-6": "juniper+host-resources-mib",
    "network/router/huawei-s5720": "huawei",
    "network/switch/h3c-e528-2": "h3c",
    "network/switch/ruijie-s5750-24gt12sfp": "ruijie",
    "network/switch/dlink-des3038": "dlink",
    "network/switch/brocade-ds-5100b": "brocade-fc",
    "network/switch/brocade-icx6430-24": "brocade-icx",
    "network/switch/hpe-procurve-516733-b21": "hp-procurve",
    "network/wifi/ubiquiti-m5": "ubiquiti",
    "network/wifi/aruba-7210": "aruba",
    "network/wifi/sangfor-wac-2": "sangfor",
    "network/wifi/sangfor-wac": "sangfor",  # the same groups under enterprise 45577
    "network/appliance/huawei-ism": "huawei-oceanstor",
    "network/appliance/tripplite-poweralert": "tripplite+ups-mib",
    "network/router/brocade-unknown-001": "brocade-fc",  # only its optics' FA-EXT-MIB table
    "network/firewall/clavister-amaranten": "clavister",
    "network/firewall/fortinet-xcu": "fortinet",
    "os/windows/XP": "windows",
    "storage/netapp-fas3270": "netapp",
    "storage/isilon-onefs": "isilon",
    "cloud/arista-dcs-7150s-52-cl": "arista",
    "network/appliance/infosec-nsae-6500": "host-resources-mib+ucd-snmp",
    "network/firewall/venus-vsos-v070060600": "venus",
    "unclassified/01": "venus",  # a bogus sysObjectID, claimed by its Venustech subtree
    "network/appliance/network-research-squid": "squid",
    "iot/geist-temperature-sensor": "geist",
    "UPS/vertiv-power": "vertiv",
}


# Metrics whose profile gives its own `valid` range instead of the unit's.
OWN_BOUNDS = {
    m.name: m.valid
    for p in profiles_for(None).profiles.values()
    for m in (*p.metrics, *(m for t in p.tables for m in t.metrics))
    if m.valid
}


# Recordings served cut to fewer subtrees in `make test` (system group plus these): cisco-unknown-01's
# 459 interfaces would cost 20 s of snmpsim for what is tested there, its entity sensors.
CUTS = {
    "network/appliance/cisco-unknown-01": (
        "1.3.6.1.2.1.1.",
        "1.3.6.1.2.1.47.1.1.1.1.2.",
        "1.3.6.1.2.1.47.1.1.1.1.7.",
        "1.3.6.1.4.1.9.9.91.",
    )
}


def community(rel: str) -> str:
    return rel.replace("/", "-")


Polled = tuple[SnmpCollector, CollectResult, CollectResult]


@dataclass
class Recordings:
    """snmpsim serving a set of recordings, each under the community `community(rel)`."""

    service: Service
    port: int
    polled: dict[str, Polled] = field(default_factory=dict)

    async def poll_twice(self, rel: str) -> Polled:
        """Two polls 60 s apart on a fake clock (the second has rates), once per recording: the tests
        of one recording look at the same two polls."""
        if rel not in self.polled:
            self.polled[rel] = await self._poll_twice(rel)
        return self.polled[rel]

    async def _poll_twice(self, rel: str) -> Polled:
        cfg = SnmpConfig(
            name=community(rel),
            address="127.0.0.1",
            port=self.port,
            community=community(rel),
            timeout_s=10,
            retries=1,
        )
        clock = FakeClock()
        c = SnmpCollector(cfg, clock=clock)
        try:
            first = await c.collect()
            await clock.advance(60)
            second = await c.collect()
        finally:
            await c.aclose()
        return c, first, second


def serve(names: list[str], root: Path, cuts: dict[str, tuple[str, ...]]) -> Iterator[Recordings]:
    data = root / "data"
    data.mkdir()
    prefixes = profile_prefixes(profiles_for(None))
    for rel in names:
        materialize(rel, data / f"{community(rel)}.snmprec", cuts.get(rel, prefixes))
    port = free_port(socket.SOCK_DGRAM)
    svc = start_snmpsim(data, root / "cache", root, port)
    try:
        # A just-started snmpsim drops the first requests (retried every second here, not after the
        # collector's 10 s timeout); the first request of a community builds its index.
        for rel in names:
            snmp_get_cli(port, community(rel), "1.3.6.1.2.1.1.3.0")
        yield Recordings(svc, port)
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def sampled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recordings]:
    yield from serve(sorted(SAMPLE), tmp_path_factory.mktemp("recordings-sample"), CUTS)


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recordings]:
    yield from serve(all_recordings(), tmp_path_factory.mktemp("recordings-all"), {})


def readings(result: CollectResult, metric: str) -> list[Sample]:
    return [s for s in result.samples if s.key.metric == metric]


def rejected(result: CollectResult) -> dict[str, float]:
    return {s.key.label("reason"): s.value for s in readings(result, "snmp_readings_rejected_total")}


def assert_clean(rel: str, result: CollectResult) -> None:
    """What every poll of every recording must hold: no error, one sample per series, every value finite
    and within its unit's bounds, every declared row label named (never empty)."""
    assert result.errors == [], rel
    keys = Counter(s.key for s in result.samples)
    assert [k for k, n in keys.items() if n > 1] == [], rel
    for s in result.samples:
        assert math.isfinite(s.value), (rel, s)
        if s.kind is not MetricKind.COUNTER:
            assert in_bounds(s.value, s.unit, OWN_BOUNDS.get(s.key.metric)), (rel, s)
        assert all(v.strip() for _, v in s.key.labels), (rel, s)


@pytest.mark.parametrize("rel", sorted(SAMPLE))
async def test_a_recording_of_each_vendor_family_gets_its_profile_and_clean_readings(
    sampled: Recordings, rel: str
) -> None:
    c, first, second = await sampled.poll_twice(rel)
    assert (c.profile_name, c.unprofiled) == (SAMPLE[rel], False)
    assert_clean(rel, first)
    assert_clean(rel, second)
    assert vendor_metrics(second), rel


async def test_ups_sentinels_and_tenth_volt_readings_are_counted_not_stored(sampled: Recordings) -> None:
    _, _, result = await sampled.poll_twice("UPS/huawei-gse200m")
    ups = {s.key.metric: s.value for s in result.samples if s.key.metric.startswith("ups_")}
    for metric in ("charge_percent", "runtime_seconds", "temperature_celsius"):
        assert f"ups_battery_{metric}" not in ups  # the recording says -1 for each
    assert all(v < 1000 for k, v in ups.items() if k.endswith("_volts"))
    assert rejected(result)["sentinel"] == 6.0  # three sentinels per poll, two polls
    assert rejected(result)["out_of_range"] >= 2.0


async def test_an_interface_speed_of_10_to_the_14_bits_is_out_of_range(sampled: Recordings) -> None:
    _, _, result = await sampled.poll_twice("network/switch/dlink-des3038")
    speeds = readings(result, "net_if_speed_bits_per_second")
    assert speeds and max(s.value for s in speeds) <= 1e10
    assert rejected(result)["out_of_range"] > 0


async def test_storage_that_overflowed_32_bits_is_inconsistent_and_the_64_bit_size_is_read(
    sampled: Recordings,
) -> None:
    _, _, result = await sampled.poll_twice("storage/isilon-onefs")
    by_storage = {}
    for s in readings(result, "device_storage_size_bytes"):
        by_storage[s.key.label("storage")] = s.value
    for s in readings(result, "device_storage_used_bytes"):
        assert s.value <= by_storage[s.key.label("storage")], s
    assert by_storage["ifs"] == 107084322865152.0  # ISILON-MIB ifsTotalBytes (Counter64)
    assert rejected(result)["inconsistent"] > 0


async def test_unavailable_cisco_sensors_publish_their_status_and_no_reading(sampled: Recordings) -> None:
    _, _, result = await sampled.poll_twice("network/appliance/cisco-unknown-01")
    status = {s.key.label("index"): s.value for s in readings(result, "hw_sensor_oper_status")}
    entity_readings = ("hw_voltage_volts", "hw_current_amps", "hw_power_watts", "hw_temperature_celsius")
    read = {s.key.label("index") for s in result.samples if s.key.metric in entity_readings}
    unavailable = {i for i, v in status.items() if v != 1.0}
    assert len(status) == 125 and len(unavailable) == 7  # entSensorStatus 2 (unavailable) on 7 sensors
    assert read and not read & unavailable


async def test_readings_sent_as_text_are_parsed_from_it(sampled: Recordings) -> None:
    _, _, result = await sampled.poll_twice("network/firewall/venus-vsos-v070060600")
    values = {s.key.metric: s.value for s in result.samples}
    assert values["device_cpu_utilization_percent"] == pytest.approx(4.477612)  # "cpu-usage: 4.477612%"
    assert values["device_memory_total_bytes"] == 8097008 * 1024  # "memory-total: 8097008kB"
    _, _, old = await sampled.poll_twice("unclassified/01")
    assert {s.key.metric: s.value for s in old.samples}[
        "device_memory_utilization_percent"
    ] == 36.0  # "36% used 64% free"


async def test_sangfor_load_averages_are_the_three_numbers_after_the_cpu_model(sampled: Recordings) -> None:
    _, _, result = await sampled.poll_twice("network/wifi/sangfor-wac")
    loads = {s.key.label("period"): s.value for s in readings(result, "device_load_average")}
    assert loads == {"1m": 1.81, "5m": 1.71, "15m": 1.86}  # "1.81", "1.71", "1.86" after the CPU's name
    assert len(readings(result, "device_storage_used_percent")) == 22


async def test_brocade_optics_readings_sent_as_padded_text_land_in_base_units(sampled: Recordings) -> None:
    _, _, result = await sampled.poll_twice("network/router/brocade-unknown-001")
    first = "16.0.196.245.124.5.186.117.0.0.0.0.0.0.0.0.1"
    port1 = {s.key.metric: s.value for s in result.samples if s.key.label("index") == first}
    assert port1 == {
        "hw_temperature_celsius": 32.0,  # "32     "
        "hw_voltage_volts": pytest.approx(3.2969),  # "3296.9 " mV
        "hw_current_amps": pytest.approx(0.006614),  # "6.614  " mA
        "hw_optical_rx_power_dbm": -26.2,
        "hw_optical_tx_power_dbm": -3.2,
    }
    assert len(readings(result, "hw_temperature_celsius")) == 22


async def test_an_oceanstor_array_reports_its_capacity_in_bytes(sampled: Recordings) -> None:
    _, _, result = await sampled.poll_twice("network/appliance/huawei-ism")
    values = {s.key.metric: s.value for s in result.samples}
    assert values["device_storage_size_bytes"] == 221205464 * 2**20  # usedCapacity / totalCapacity in MB
    assert values["device_storage_used_bytes"] == 2215168 * 2**20
    assert values["storage_system_health"] == 1.0


async def test_juniper_components_without_memory_publish_no_cpu(sampled: Recordings) -> None:
    _, _, result = await sampled.poll_twice("network/router/juniper-mx960-12-3r6-6")
    cpu = readings(result, "device_cpu_utilization_percent")
    assert len(cpu) == 5  # three FPCs and two routing engines; the other 53 rows have no CPU
    assert sorted(s.value for s in cpu) == [0.0, 7.0, 13.0, 19.0, 29.0]
    assert all(s.value != 0.0 for s in readings(result, "hw_temperature_celsius"))


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_a_walk_completes_every_column_when_one_ends_at_the_end_of_the_mib(
    snmpsim: SnmpPeer, version: str
) -> None:
    """lab-v1-short-column: ifAlias (2 rows) is the last column of the MIB and walks beside ifDescr (8
    rows); v1 answers noSuchName for ifAlias on the third round, which used to end the others too."""
    snmp_get_cli(snmpsim.port, "lab-v1-short-column", "1.3.6.1.2.1.1.3.0")
    cfg = SnmpConfig(
        name="v1",
        address="127.0.0.1",
        port=snmpsim.port,
        version=version,
        community="lab-v1-short-column",
        profile="if-mib",
        timeout_s=5,
        retries=0,
    )
    c = SnmpCollector(cfg, clock=FakeClock())
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    assert result.errors == []
    names = sorted(s.key.label("interface") for s in readings(result, "net_if_oper_status"))
    assert names == [f"ge-0/0/{i}" for i in range(1, 9)]
    aliases = {s.key.label("interface"): s.key.label("alias") for s in readings(result, "net_if_oper_status")}
    assert (aliases["ge-0/0/1"], aliases["ge-0/0/2"], aliases["ge-0/0/3"]) == ("uplink", "server-2", "")


@pytest.mark.slow
@pytest.mark.timeout(3600)
async def test_every_recording_polls_clean_and_80_percent_match_a_profile_that_yields(
    everything: Recordings,
) -> None:
    """A match counts only when its profile yields readings beyond IF-MIB (issue 15's goal): a vendor
    profile whose tables the device does not hold is no better than the generic fallback."""
    matched: dict[str, str] = {}
    silent: list[str] = []
    unmatched: list[str] = []
    for rel in all_recordings():
        c, first, second = await everything.poll_twice(rel)
        assert_clean(rel, first)
        assert_clean(rel, second)
        if c.unprofiled:
            unmatched.append(rel)
        elif vendor_metrics(second):
            matched[rel] = c.profile_name or ""
        else:
            silent.append(rel)
    total = len(matched) + len(silent) + len(unmatched)
    print(
        f"matched {len(matched) + len(silent)}, matched and yielding {len(matched)} "
        f"({len(matched) / total:.0%}), unmatched {len(unmatched)} of {total}; "
        f"matched but silent: {silent}; unmatched: {unmatched}"
    )
    assert len(matched) / total >= 0.8


async def test_thirty_collectors_polling_at_once_each_get_their_own_answers(snmpsim: SnmpPeer) -> None:
    """Every community target shares one UDP socket; answers are matched by request-id and sender."""
    communities = ["apc-8932", "eaton-93e", "cisco-c3560"] * 10

    def make(i: int, name: str) -> SnmpCollector:
        cfg = SnmpConfig(
            name=f"{name}-{i}", address="127.0.0.1", port=snmpsim.port, community=name, timeout_s=20
        )
        return SnmpCollector(cfg, clock=FakeClock())

    alone = {}
    for name in set(communities):
        c = make(0, name)
        try:
            alone[name] = sorted(str(s.key) for s in (await c.collect()).samples)
        finally:
            await c.aclose()
    together = [make(i, name) for i, name in enumerate(communities)]
    try:
        results = await asyncio.gather(*(c.collect() for c in together))
    finally:
        await asyncio.gather(*(c.aclose() for c in together))
    for name, result in zip(communities, results, strict=True):
        assert result.errors == []
        assert sorted(str(s.key) for s in result.samples) == alone[name]
