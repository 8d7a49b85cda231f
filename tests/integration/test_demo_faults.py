"""The demo's BMC temperature fault against a real sushy-static: the served reading climbs past the sensor's
critical limit and back, every GET in between reads a whole document, the console gets one line per state
change, and stopping leaves the file as it was. Plus the fault timings' env format.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.collect.conftest import start_sushy_static

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("demo_faults", REPO / "packaging" / "demo_faults.py")
assert _spec and _spec.loader
faults = importlib.util.module_from_spec(_spec)
sys.modules["demo_faults"] = faults  # dataclasses look their module up there
_spec.loader.exec_module(faults)

THERMAL_URL = "/redfish/v1/Chassis/System.Embedded.1/Thermal"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, (30.0, 90.0, 600.0)), ("", (30.0, 90.0, 600.0)), ("off", None), (" OFF ", None),
     ("3,10,600", (3.0, 10.0, 600.0)), ("0.5, 2, 60", (0.5, 2.0, 60.0))],
)  # fmt: skip
def test_fault_timings_are_three_seconds_values_or_off(value: str | None, expected: object) -> None:
    assert faults.timings(value, faults.LINK_DEFAULT) == expected


@pytest.mark.unit
@pytest.mark.parametrize("value", ["3,10", "3,10,600,1", "a,b,c", "0,1,6", "-1,1,6", "nan,1,2", "1,2,inf"])
def test_a_bad_fault_timing_is_refused_with_the_expected_format(value: str) -> None:
    expected = r"expected `first,duration,every` seconds \(each > 0, < 1 day\) or `off`: "
    with pytest.raises(ValueError, match=expected + re.escape(repr(value))):
        faults.timings(value, faults.LINK_DEFAULT)


def _inlet(doc: dict[str, object]) -> int:
    temps = doc["Temperatures"]
    assert isinstance(temps, list)
    return int(next(t for t in temps if t["MemberId"] == faults.SENSOR)["ReadingCelsius"])


@pytest.mark.integration
def test_the_bmc_inlet_climbs_past_its_critical_limit_and_back_as_sushy_static_serves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = start_sushy_static("dell-idrac9-legacy", tmp_path)
    try:
        before = (peer.root / faults.THERMAL).read_bytes()
        fault = faults.TempFault("bmc-r740", peer.root, first=0.2, per_degree=0.05, every=600)
        with httpx.Client(base_url=peer.url, timeout=5) as http:
            baseline = _inlet(http.get(THERMAL_URL).json())  # before the fault starts, however loaded
            running = faults.Faults([fault.run])
            seen: list[int] = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                r = http.get(THERMAL_URL)
                assert r.status_code == 200
                seen.append(_inlet(r.json()))  # a half-written file would fail to parse here
                if max(seen) > 42 and seen[-1] == 23:
                    break
                time.sleep(0.01)
        running.stop()
        after = (peer.root / faults.THERMAL).read_bytes()
    finally:
        peer.service.stop()
    assert baseline == 23
    assert max(seen) == 46  # critical 42 + 4
    assert seen[-1] == 23
    peak = seen.index(46)
    assert seen[:peak] == sorted(seen[:peak]) and seen[peak:] == sorted(seen[peak:], reverse=True)
    assert json.loads(after) == json.loads(before)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  fault:")]
    limits = "(warning 38, critical 42)"
    assert lines == [
        f"  fault: bmc-r740 System Board Inlet Temp climbing: 24 °C {limits}",
        f"  fault: bmc-r740 System Board Inlet Temp above its warning limit: 39 °C {limits}",
        f"  fault: bmc-r740 System Board Inlet Temp ABOVE its critical limit: 43 °C {limits}",
        f"  fault: bmc-r740 System Board Inlet Temp above its warning limit: 42 °C {limits}",
        f"  fault: bmc-r740 System Board Inlet Temp cooling: 38 °C {limits}",
        f"  fault: bmc-r740 System Board Inlet Temp back to normal: 23 °C {limits}",
    ]
