"""Profile resolution without a device: vendor plus detected kinds, scalar overrides, bounded fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collect.snmp.profiles import load_profiles
from agent.collect.snmp.sanity import in_bounds
from agent.collect.snmp.session import parse_oid

pytestmark = pytest.mark.unit

UPS_IDENT = parse_oid("1.3.6.1.2.1.33.1.1")
HR_STORAGE = parse_oid("1.3.6.1.2.1.25.2.3.1")
UCD_MEMORY = parse_oid("1.3.6.1.4.1.2021.4")


def test_a_vendor_gets_the_kinds_it_answers_under_that_it_does_not_already_include() -> None:
    ps = load_profiles()
    netsnmp = ps.match("1.3.6.1.4.1.8072.3.2.10")
    assert netsnmp is not None and netsnmp.name == "net-snmp"
    composed = ps.compose(netsnmp, {UPS_IDENT, HR_STORAGE, UCD_MEMORY})
    assert composed is not None and composed.name == "net-snmp+ups-mib"  # HR and UCD come with net-snmp
    assert {"if-mib", "host-resources-mib", "ucd-snmp", "ups-mib"} <= composed.includes
    tables = [t.name for t in composed.tables]
    assert len(tables) == len(set(tables)) and "ups-input" in tables


def test_no_vendor_and_no_kind_is_unprofiled_and_kinds_alone_are_a_profile() -> None:
    ps = load_profiles()
    assert ps.match("1.3.6.1.4.1.99999.1") is None
    assert ps.compose(None, set()) is None
    alone = ps.compose(None, {HR_STORAGE})
    assert alone is not None and alone.name == "host-resources-mib" and "if-mib" in alone.includes


def test_a_vendors_scalar_replaces_the_kinds_scalar_of_the_same_name() -> None:
    eaton = load_profiles().profiles["eaton"]
    runtime = [m for m in eaton.metrics if m.name == "ups_battery_runtime_seconds"]
    assert [m.oid for m in runtime] == [parse_oid("1.3.6.1.4.1.534.1.2.1.0")]


def test_a_profile_with_an_unbounded_extract_pattern_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nsysobjectid: ['1.3.6.1.4.1.77777.*']\n"
        "metrics:\n  - {name: x, oid: 1.3.6.1.4.1.77777.1.0, extract: '(\\d+) (\\d+)'}\n"
    )
    assert "bad" not in load_profiles((tmp_path,)).profiles


@pytest.mark.parametrize(
    ("value", "unit", "valid", "ok"),
    [
        (-1.0, "percent", None, False),
        (236.9, "volts", None, True),
        (2369.0, "volts", None, False),
        (1e14, "bits/s", None, False),
        (150.0, "percent", (0.0, 250.0), True),
        (float("nan"), "", None, False),
        (-48.0, "volts", None, True),
    ],
)
def test_unit_bounds(value: float, unit: str, valid: tuple[float, float] | None, ok: bool) -> None:
    assert in_bounds(value, unit, valid) is ok


def test_a_huawei_device_counting_its_aaa_users_gets_the_aaa_kind_and_an_oceanstor_its_own_profile() -> None:
    ps = load_profiles()
    router = ps.match("1.3.6.1.4.1.2011.2.89.5")  # the BRAS recording, network/router/huawei-unknown-001
    composed = ps.compose(router, {parse_oid("1.3.6.1.4.1.2011.5.2.1.14.1.1")})
    assert composed is not None and composed.name == "huawei+huawei-aaa"
    assert {m.name for m in composed.metrics} >= {"aaa_online_users", "aaa_access_attempts_per_second"}
    oceanstor = ps.match("1.3.6.1.4.1.2011.2.91")  # longer than the switches' 2011.2.*
    assert oceanstor is not None and oceanstor.name == "huawei-oceanstor"
