"""Redfish BMC hygiene: TLS and basic auth against sushy-emulator, session lifetime against the test BMC."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import aiohttp
import pytest

from agent.collect.redfish.collector import RedfishCollector
from agent.collect.redfish.config import RedfishConfig
from shared.clock import FakeClock
from shared.model import CollectResult
from tests.collect.bmc_server import SESSIONS, BmcServer, Fault
from tests.collect.conftest import BMC_PASSWORD, BMC_USER, EmulatorPeer

pytestmark = pytest.mark.integration

# What `sushy-emulator --fake` reports in its one chassis' legacy Thermal resource.
EMULATOR_TEMPERATURES = {"CPU Temp": 41.0, "Chassis Intake Temp": 25.0}


def bmc(url: str, clock: FakeClock | None = None, **extra: object) -> RedfishCollector:
    cfg = {"name": "bmc", "url": url, "username": BMC_USER, "password": BMC_PASSWORD, **extra}
    return RedfishCollector(RedfishConfig.model_validate(cfg), clock or FakeClock())


async def polls(c: RedfishCollector, n: int = 1) -> list[CollectResult]:
    try:
        await c.start()
        return [await c.collect() for _ in range(n)]
    finally:
        await c.aclose()


def temperatures(result: CollectResult) -> dict[str, float]:
    return {
        s.key.label("sensor"): s.value for s in result.samples if s.key.metric == "hw_temperature_celsius"
    }


async def test_tls_is_verified_by_default_and_a_ca_file_or_the_warned_opt_out_reach_a_self_signed_bmc(
    sushy_emulator: EmulatorPeer, self_signed_cert: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    url = sushy_emulator.url
    [refused] = await polls(bmc(url, quirks=["no-sessions"]))
    assert refused.samples == []
    assert refused.errors == [
        "bmc: TLS certificate verification failed (set ca_file, or verify_tls: false for this BMC) "
        "(/redfish/v1/)"
    ]
    [trusted] = await polls(bmc(url, quirks=["no-sessions"], ca_file=str(self_signed_cert[0])))
    assert trusted.errors == [] and temperatures(trusted) == EMULATOR_TEMPERATURES
    with caplog.at_level(logging.WARNING, logger="agent.collect.redfish"):
        first, second = await polls(bmc(url, quirks=["no-sessions"], verify_tls=False), 2)
    assert first.errors == second.errors == []
    assert temperatures(first) == temperatures(second) == EMULATOR_TEMPERATURES
    assert [r.getMessage() for r in caplog.records] == [
        f"bmc: TLS certificate verification is OFF for {url} (verify_tls: false)"
    ]


async def test_a_bmc_without_a_working_session_service_needs_the_no_sessions_quirk(
    sushy_emulator: EmulatorPeer, self_signed_cert: tuple[Path, Path]
) -> None:
    ca = str(self_signed_cert[0])
    [without] = await polls(bmc(sushy_emulator.url, ca_file=ca))
    assert without.samples == []
    assert without.errors == [
        "bmc: login rejected for user 'outpost': wrong credentials, or a BMC whose SessionService "
        "does not work (quirks: [no-sessions])"
    ]
    [basic] = await polls(bmc(sushy_emulator.url, ca_file=ca, quirks=["no-sessions"]))
    assert basic.errors == [] and temperatures(basic) == EMULATOR_TEMPERATURES


async def test_a_wrong_password_is_a_clear_error_and_never_reaches_logs_or_errors(
    sushy_emulator: EmulatorPeer,
    bmc_server: BmcServer,
    self_signed_cert: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "Wrong-pass-0042"
    ca = str(self_signed_cert[0])
    with caplog.at_level(logging.DEBUG):
        [per_request] = await polls(
            bmc(sushy_emulator.url, ca_file=ca, quirks=["no-sessions"], password=wrong)
        )
        [session] = await polls(bmc(bmc_server.url, ca_file=ca, password=wrong))
    assert per_request.errors == ["bmc: HTTP 401: access denied for user 'outpost' (/redfish/v1/Systems)"]
    assert session.errors == [
        "bmc: login rejected for user 'outpost': wrong credentials, or a BMC whose SessionService "
        "does not work (quirks: [no-sessions])"
    ]
    assert bmc_server.sessions == {}
    said = [r.getMessage() for r in caplog.records] + per_request.errors + session.errors
    assert caplog.records and not [line for line in said if wrong in line or BMC_PASSWORD in line]


async def test_one_session_is_created_reused_across_polls_and_deleted_on_close(
    bmc_server: BmcServer, self_signed_cert: tuple[Path, Path]
) -> None:
    ca = self_signed_cert[0]
    results = await polls(bmc(bmc_server.url, ca_file=str(ca)), 3)
    assert [len(r.samples) for r in results] == [34, 34, 34] and all(r.errors == [] for r in results)
    assert bmc_server.requests("POST") == [SESSIONS]
    assert {s.auth for s in bmc_server.seen if s.method == "GET" and s.path != "/redfish/v1"} == {"token"}
    assert bmc_server.requests("DELETE") == [f"{SESSIONS}/1"]
    assert 1 <= bmc_server.max_in_flight <= 2
    # What an operator would see on the BMC afterwards: its session collection is empty.
    tls = ssl.create_default_context(cafile=str(ca))
    auth = aiohttp.BasicAuth(BMC_USER, BMC_PASSWORD)
    async with aiohttp.ClientSession(auth=auth) as http:
        async with http.get(f"{bmc_server.url}{SESSIONS}", ssl=tls) as resp:
            assert (resp.status, (await resp.json())["Members"]) == (200, [])


async def test_a_bad_document_costs_its_readings_and_keeps_the_session(
    bmc_server: BmcServer, self_signed_cert: tuple[Path, Path]
) -> None:
    bmc_server.fail("/redfish/v1/Chassis", Fault(status=500))
    c = bmc(bmc_server.url, ca_file=str(self_signed_cert[0]))
    failed, recovered = await polls(c, 2)
    assert failed.errors == ["bmc: HTTP 500 (/redfish/v1/Chassis)"]
    assert {s.key.label("component") for s in failed.samples} == {"system"}  # Systems was still read
    assert recovered.errors == [] and len(recovered.samples) == 34
    assert bmc_server.requests("POST") == [SESSIONS]
    assert bmc_server.requests("DELETE") == [f"{SESSIONS}/1"]  # only on close
    assert bmc_server.sessions == {}


async def test_refused_credentials_are_retried_after_a_long_pause_not_every_poll(
    bmc_server: BmcServer, self_signed_cert: tuple[Path, Path]
) -> None:
    clock = FakeClock()
    c = bmc(bmc_server.url, clock, ca_file=str(self_signed_cert[0]), password="Wrong-pass-0042")
    try:
        refused = await c.collect()
        await clock.advance(60)
        quiet = await c.collect()
        assert bmc_server.requests("POST") == [SESSIONS]  # the BMC heard one failed login, not two
        await clock.advance(RedfishCollector.AUTH_RETRY_S - 60)
        again = await c.collect()
    finally:
        await c.aclose()
    assert refused.errors == again.errors and len(refused.errors) == 1
    assert quiet.errors == ["backing off for 840s after the BMC refused our credentials"]
    assert bmc_server.requests("POST") == [SESSIONS, SESSIONS]
