"""A busy or slow BMC: 503/429 back-off honouring Retry-After, and the per-read deadline's partial result."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.collect.redfish.collector import RedfishCollector
from agent.collect.redfish.config import RedfishConfig
from shared.clock import FakeClock
from shared.model import CollectResult
from tests.collect.bmc_server import SESSIONS, BmcServer, Fault
from tests.collect.conftest import BMC_PASSWORD, BMC_USER

pytestmark = pytest.mark.integration

THERMAL = "/redfish/v1/Chassis/chassis/ThermalSubsystem"
POWER = "/redfish/v1/Chassis/chassis/PowerSubsystem"


def collector(server: BmcServer, ca: Path, clock: FakeClock, **extra: object) -> RedfishCollector:
    cfg = {
        "name": "bmc",
        "url": server.url,
        "username": BMC_USER,
        "password": BMC_PASSWORD,
        "ca_file": str(ca),
        **extra,
    }
    return RedfishCollector(RedfishConfig.model_validate(cfg), clock)


def metric(result: CollectResult, name: str) -> dict[str, float]:
    return {s.key.label("sensor"): s.value for s in result.samples if s.key.metric == name}


@pytest.mark.parametrize(
    ("status", "retry_after", "backoff_s"),
    [(503, "120", 120), (429, None, 30)],
    ids=["503-with-retry-after", "429-without-retry-after"],
)
async def test_a_busy_bmc_is_left_alone_for_its_retry_after_then_read_in_full(
    bmc_server: BmcServer,
    self_signed_cert: tuple[Path, Path],
    status: int,
    retry_after: str | None,
    backoff_s: int,
) -> None:
    bmc_server.fail(THERMAL, Fault(status=status, retry_after=retry_after))
    clock = FakeClock()
    c = collector(bmc_server, self_signed_cert[0], clock)
    try:
        busy = await c.collect()
        asked = len(bmc_server.seen)
        await clock.advance(backoff_s - 1)
        waiting = await c.collect()
        assert len(bmc_server.seen) == asked  # nothing was sent while backing off
        await clock.advance(1)
        full = await c.collect()
    finally:
        await c.aclose()
    assert busy.errors == [f"bmc: busy (HTTP {status}), retry after {backoff_s}s ({THERMAL})"]
    assert waiting.samples == [] and waiting.errors == ["backing off for 1s after the BMC said busy"]
    assert full.errors == [] and len(full.samples) == 34
    assert metric(full, "hw_fan_speed_ratio") == pytest.approx({"Fan 0": 0.41, "Fan 1": 0.395})
    assert bmc_server.requests("POST") == [SESSIONS]  # backing off keeps the session


async def test_a_stalled_resource_is_cut_at_the_deadline_and_what_was_read_is_published(
    bmc_server: BmcServer, self_signed_cert: tuple[Path, Path]
) -> None:
    bmc_server.fail(POWER, Fault(stall=True))
    clock = FakeClock()
    c = collector(bmc_server, self_signed_cert[0], clock, deadline_s=0.5)
    try:
        partial = await c.collect()
        await clock.advance(60)
        full = await c.collect()
    finally:
        await c.aclose()
    assert partial.errors == ["deadline of 0.5s: partial read"]
    assert metric(partial, "hw_temperature_celsius") == {"Inlet Temp": 24.5, "CPU0 Temp": 55.25}
    assert metric(partial, "hw_fan_speed_ratio") == pytest.approx({"Fan 0": 0.41, "Fan 1": 0.395})
    assert metric(partial, "hw_psu_output_watts") == {}
    assert full.errors == [] and metric(full, "hw_psu_output_watts") == {"PSU 0": 305.5, "PSU 1": 0.0}
    assert bmc_server.requests("POST") == [SESSIONS]  # a slow read is no reason for a new session
