"""Counter arithmetic and profile loading/matching: pure logic, no I/O beyond reading profile files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.collect.rates import RateTracker, counter_delta
from agent.collect.registry import build_collector
from agent.collect.snmp.config import SnmpConfig
from agent.collect.snmp.profiles import load_profiles
from shared.clock import FakeClock
from shared.model import SeriesKey

pytestmark = pytest.mark.unit
KEY = SeriesKey.of("net_if_receive_bytes_per_second", {"interface": "eth0"})


def test_first_sample_has_no_rate_and_the_second_one_does() -> None:
    r = RateTracker()
    assert r.update(KEY, 0, 100, bits=32) is None
    assert r.update(KEY, 10_000, 1100, bits=32) == 100.0


@pytest.mark.parametrize(
    ("prev", "value", "bits", "delta"),
    [
        (2**32 - 100, 50, 32, 150),  # 32-bit wrap
        (2**64 - 10, 5, 64, 15),  # 64-bit wrap, exact in integers
        (5_000_000, 10, 32, None),  # drop from mid-range: a reset, not a wrap
        (2**40, 3, 64, None),
        (7, 7, 32, 0),
    ],
)
def test_counter_delta_tells_wraps_from_resets(prev: int, value: int, bits: int, delta: int | None) -> None:
    assert counter_delta(prev, value, bits) == delta


def test_reset_all_makes_every_counter_start_over_without_a_spike() -> None:
    r = RateTracker()
    r.update(KEY, 0, 10**12)
    r.reset_all()
    assert r.update(KEY, 1000, 5) is None
    assert r.update(KEY, 2000, 15) == 10.0


def test_profiles_resolve_extends_and_match_the_most_specific_sysobjectid(tmp_path: Path) -> None:
    (tmp_path / "cisco-3560.yaml").write_text(
        "name: cisco-3560\nsysobjectid: ['1.3.6.1.4.1.9.1.617']\nextends: [cisco]\n"
        "metrics:\n  - {name: extra_gauge, oid: 1.3.6.1.4.1.9.9.999.0}\n"
    )
    (tmp_path / "broken.yaml").write_text("name: broken\nmetrics: [{oid: not-an-oid}]\n")
    (tmp_path / "orphan.yaml").write_text("name: orphan\nextends: [nope]\n")
    ps = load_profiles((tmp_path,))
    assert ps.match("1.3.6.1.4.1.9.1.617").name == "cisco-3560"  # type: ignore[union-attr]
    assert ps.match(".1.3.6.1.4.1.9.1.1208").name == "cisco"  # type: ignore[union-attr]
    assert ps.match("1.3.6.1.4.1.30065.1.3011.7150") is not None
    assert ps.match("1.3.6.1.4.1.99999.1") is None
    assert "broken" not in ps.profiles and "orphan" not in ps.profiles
    child = ps.profiles["cisco-3560"]
    assert [t.name for t in child.tables][:1] == ["interfaces"]  # inherited through cisco -> if-mib
    assert [m.name for m in child.metrics] == ["extra_gauge"]


def test_generic_profile_covers_the_standard_mibs() -> None:
    generic = load_profiles().generic
    assert {t.name for t in generic.tables} >= {
        "interfaces",
        "hr-processors",
        "hr-storage",
        "entity-sensors",
        "ups-input",
        "ups-output",
    }


def test_agent_builds_500_targets_over_20_profiles_in_under_10_seconds(tmp_path: Path) -> None:
    for i in range(20 - len(load_profiles().profiles)):
        (tmp_path / f"vendor-{i}.yaml").write_text(
            f"name: vendor-{i}\nsysobjectid: ['1.3.6.1.4.1.{50000 + i}.*']\nextends: [generic]\n"
        )
    started = time.perf_counter()
    configs = [
        SnmpConfig(
            name=f"sw{i}", address=f"10.0.{i // 250}.{i % 250}", community="public", profiles_dir=tmp_path
        )
        for i in range(500)
    ]
    collectors = [build_collector(c, FakeClock()) for c in configs]
    elapsed = time.perf_counter() - started
    assert len(collectors) == 500 and len(load_profiles((tmp_path,)).profiles) >= 20
    assert elapsed < 10.0
