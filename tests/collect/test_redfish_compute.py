"""Processors and memory under Systems, the per-poll request budget and `$expand`, and chassis reached
only through `Links.Contains`: against sushy-static and the request-recording test BMC (bmc_server.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agent.collect import vocabulary as v
from agent.collect.redfish.collector import MAX_CHASSIS_DEPTH, RedfishCollector
from agent.collect.redfish.config import RedfishConfig
from shared.clock import FakeClock
from shared.model import CollectResult, MetricKind
from tests.collect.bmc_server import BmcServer, Fault
from tests.collect.conftest import BMC_PASSWORD, BMC_USER, REDFISH_TREES, RedfishPeer
from tests.collect.test_redfish_trees import scrape, series, state

pytestmark = pytest.mark.integration

StartSushy = Callable[[str], RedfishPeer]
R = "/redfish/v1"
DIMMS = 64


def collector(url: str, **extra: object) -> RedfishCollector:
    return RedfishCollector(RedfishConfig.model_validate({"name": "bmc", "url": url, **extra}), FakeClock())


def to_bmc(server: BmcServer, cert: Path, **extra: object) -> RedfishCollector:
    cfg = {"username": BMC_USER, "password": BMC_PASSWORD, "ca_file": str(cert), "read_logs": False, **extra}
    return collector(server.url, **cfg)


@asynccontextmanager
async def serving(tree: Path, cert: tuple[Path, Path]) -> AsyncIterator[BmcServer]:
    server = BmcServer(tree, BMC_USER, BMC_PASSWORD, cert)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def put(tree: Path, rel: str, doc: dict[str, object]) -> None:
    path = tree / rel / "index.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def ref(rel: str) -> dict[str, str]:
    return {"@odata.id": f"{R}/{rel}"}


def copy_tree(name: str, tmp_path: Path) -> Path:
    tree = tmp_path / name
    shutil.copytree(REDFISH_TREES / name, tree)
    return tree


def host_with_64_dimms(tmp_path: Path, expand: bool) -> Path:
    """The rack server with 64 populated DIMM slots, each with its Metrics and EnvironmentMetrics."""
    tree = copy_tree("dmtf-rack-server", tmp_path)
    members = []
    for i in range(DIMMS):
        rel = f"Systems/1/Memory/D{i}"
        members.append(ref(rel))
        put(tree, rel, {
            "@odata.id": f"{R}/{rel}", "@odata.type": "#Memory.v1_17_0.Memory", "Id": f"D{i}",
            "Name": f"DIMM {i}",
            "Status": {"State": "Enabled", "Health": "OK"},
            "Metrics": ref(f"{rel}/MemoryMetrics"), "EnvironmentMetrics": ref(f"{rel}/EnvironmentMetrics"),
        })  # fmt: skip
        put(
            tree,
            f"{rel}/MemoryMetrics",
            {"@odata.type": "#MemoryMetrics.v1_7_0.MemoryMetrics", "BandwidthPercent": i},
        )
        put(tree, f"{rel}/EnvironmentMetrics", {"TemperatureCelsius": {"Reading": 30 + i % 10}})
    put(tree, "Systems/1/Memory", {"@odata.id": f"{R}/Systems/1/Memory", "Members": members})
    if expand:
        root = json.loads((tree / "index.json").read_text())
        features = {"ExpandQuery": {"ExpandAll": True, "NoLinks": True, "Levels": True, "MaxLevels": 6}}
        put(tree, "", root | {"ProtocolFeaturesSupported": features})
    return tree


def dimms_read(result: CollectResult) -> set[str]:
    """The memory modules whose metrics this poll read."""
    memory = [s.key for s in result.samples if s.key.label("component") == "memory"]
    return {k.label("id") for k in memory if k.metric == v.UTILIZATION.name}


def under(server: BmcServer, prefix: str) -> list[str]:
    return [p for p in server.requests() if p.startswith(f"{R}/{prefix}")]


async def test_processors_and_memory_are_read_with_their_metrics_states_and_error_counts(
    sushy_static: StartSushy,
) -> None:
    c = collector(sushy_static("dmtf-rack-server").url)
    try:
        result = await c.collect()
    finally:
        await c.aclose()
    assert result.errors == []
    # the current speed once per part: ProcessorMetrics 1.3+, else 1.0's AverageFrequencyMHz
    assert series(result, v.FREQUENCY.name, system="1") == {
        "Processor 1/OperatingSpeedMHz": 3.1e9,
        "Processor 2/AverageFrequencyMHz": 2.2e9,
        "DIMM A1/OperatingSpeedMHz": 4.8e9,
    }
    assert series(result, v.UTILIZATION.name, id="CPU1") == {
        "Processor 1/BandwidthPercent": pytest.approx(0.37),
        "Processor 1/KernelPercent": pytest.approx(0.045),
        "Processor 1/UserPercent": pytest.approx(0.305),
    }
    assert series(result, v.THROTTLE_MARGIN.name) == {
        "Processor 1/ThrottlingCelsius": 38.0,
        "Processor 2/ThrottlingCelsius": 4.0,
    }
    assert series(result, v.VOLTAGE.name, system="1") == {"Processor 1/CoreVoltage": 1.05}
    assert series(result, v.POWER.name, system="1") == {"Processor 2/ConsumedPowerWatt": 205.0}
    # CPU1's and DIMM A2's temperatures are their chassis Sensors' (DataSourceUri): once, on the part,
    # with the Sensor's thresholds
    temps = {s.key: s.value for s in result.samples if s.key.metric == v.TEMPERATURE.name}
    assert list(temps.values()).count(61.5) == 1 and list(temps.values()).count(43.0) == 1
    assert series(result, v.TEMPERATURE.name, system="1") == {
        "Processor 1/TemperatureCelsius": 61.5,
        "Processor 2/TemperatureCelsius": 88.0,
        "DIMM A2/TemperatureCelsius": 43.0,
    }
    cpu1_temp = next(k for k in temps if k.label("id") == "CPU1")
    assert (result.limits[cpu1_temp].warn_high, result.limits[cpu1_temp].crit_high) == (90.0, 100.0)
    cpu1 = {"system": "1", "component": "processor", "sensor": "Processor 1", "id": "CPU1"}
    joined = {s.key.metric for s in result.samples if dict(s.key.labels) == cpu1}
    assert joined == {v.HEALTH.name, v.STATUS.name, v.THROTTLED.name}
    assert (
        state(result, v.THROTTLED.name, id="CPU2") == 1.0
        and state(result, v.THROTTLED.name, id="CPU1") == 0.0
    )
    assert state(result, v.HEALTH.name, id="CPU2") == v.HEALTH_CODES["Warning"]
    assert state(result, v.HEALTH.name, id="DIMMB1") == v.HEALTH_CODES["Critical"]
    # error counts are counters: the lifetime window where given, else the current period's
    errors = {
        (s.key.label("id"), s.key.label("property")): s
        for s in result.samples
        if s.key.metric == v.ERRORS.name
    }
    assert {s.kind for s in errors.values()} == {MetricKind.COUNTER}
    assert errors["CPU1", "CacheMetricsTotal/LifeTime/CorrectableECCErrorCount"].value == 3.0
    assert ("CPU1", "CacheMetricsTotal/CurrentPeriod/CorrectableECCErrorCount") not in errors
    assert errors["DIMMB1", "LifeTime/UncorrectableECCErrorCount"].value == 2.0
    assert errors["DIMMA2", "CurrentPeriod/CorrectableECCErrorCount"].value == 0.0
    assert state(result, v.ALARM.name, id="DIMMB1", property="AlarmTrips/UncorrectableECCError") == 1.0
    assert state(result, v.ALARM.name, id="DIMMA1", property="AlarmTrips/CorrectableECCError") == 1.0
    assert state(result, v.ALARM.name, id="DIMMA1", property="AlarmTrips/Temperature") == 0.0
    # an empty slot is its state, and its Metrics link is not followed (it leads nowhere)
    assert {s.key.metric: s.value for s in result.samples if s.key.label("id") == "DIMMB2"} == {
        v.STATUS.name: v.STATUS_CODES["Absent"]
    }
    assert c.stats.missing_documents == 0
    assert state(result, v.HEALTH.name, component="processor-summary") == v.HEALTH_CODES["Warning"]
    assert state(result, v.HEALTH_ROLLUP.name, component="memory-summary") == v.HEALTH_CODES["Critical"]
    assert series(result, v.UTILIZATION.name, component="memory-summary") == {
        "1U Rack Server/BandwidthPercent": pytest.approx(0.12),
        "1U Rack Server/CapacityUtilizationPercent": pytest.approx(0.61),
    }


async def test_a_host_with_64_dimms_stays_within_the_request_budget_and_covers_them_all_in_turn(
    tmp_path: Path, self_signed_cert: tuple[Path, Path]
) -> None:
    async with serving(host_with_64_dimms(tmp_path, expand=False), self_signed_cert) as server:
        c = to_bmc(server, self_signed_cert[0])
        covered: set[str] = set()
        per_poll = []
        try:
            for _ in range(6):
                before = len(server.requests())
                result = await c.collect()
                seen = server.requests()[before:]
                assert result.errors == []
                assert series(result, v.POWER.name, sensor="Total Power")  # the chassis is still read
                compute = [p for p in seen if p.startswith(f"{R}/Systems/1/") and "LogServices" not in p]
                assert len(compute) <= 48
                per_poll.append(len(dimms_read(result)))
                covered |= dimms_read(result)
        finally:
            await c.aclose()
    assert covered == {f"D{i}" for i in range(DIMMS)}
    assert max(per_poll) < DIMMS / 4  # each poll reads a share, the next ones the rest
    assert c.stats.skipped_requests > 0
    counted = f'{{event="skipped_requests",target="bmc"}} {c.stats.skipped_requests:.1f}'
    assert f"outpost_agent_collect_item_events_total{counted}" in scrape(c)


async def test_a_service_that_advertises_expand_gives_a_collection_and_its_metrics_in_one_request(
    tmp_path: Path, self_signed_cert: tuple[Path, Path]
) -> None:
    async with serving(host_with_64_dimms(tmp_path, expand=True), self_signed_cert) as server:
        c = to_bmc(server, self_signed_cert[0])
        try:
            result = await c.collect()
        finally:
            await c.aclose()
        memory = [s for s in server.seen if f"{s.path}/".startswith(f"{R}/Systems/1/Memory/")]
    assert result.errors == []
    assert [(s.path, s.query) for s in memory] == [(f"{R}/Systems/1/Memory", "$expand=.($levels=2)")]
    assert dimms_read(result) == {f"D{i}" for i in range(DIMMS)}
    assert len(series(result, v.TEMPERATURE.name, component="memory")) == DIMMS
    assert c.stats.skipped_requests == 0


async def test_a_service_that_advertises_expand_but_refuses_it_is_asked_plainly_from_then_on(
    tmp_path: Path, self_signed_cert: tuple[Path, Path]
) -> None:
    async with serving(host_with_64_dimms(tmp_path, expand=True), self_signed_cert) as server:
        server.fail(f"{R}/Systems/1/Processors", Fault(status=400))
        c = to_bmc(server, self_signed_cert[0], component_requests=400)
        try:
            first, second = await c.collect(), await c.collect()
        finally:
            await c.aclose()
        expanded = [s.path for s in server.seen if "$expand" in s.query]
    assert expanded == [f"{R}/Systems/1/Processors"]  # refused once; Memory is not asked expanded either
    assert len(first.errors) == 1 and "HTTP 400" in first.errors[0] and second.errors == []
    assert dimms_read(first) == dimms_read(second) == {f"D{i}" for i in range(DIMMS)}


async def test_chassis_reached_only_through_links_are_read_once_each_and_only_so_deep(
    tmp_path: Path, self_signed_cert: tuple[Path, Path]
) -> None:
    full = copy_tree("blade-chassis", tmp_path / "full")
    tree = copy_tree("blade-chassis", tmp_path / "linked")
    put(tree, "Chassis", {"@odata.id": f"{R}/Chassis", "Members": [ref("Chassis/Enclosure")]})
    # Blade1 also says it contains its enclosure (a loop), and a chain of chassis hangs below it
    blade1 = json.loads((tree / "Chassis/Blade1/index.json").read_text())
    blade1["Links"]["Contains"] = [ref("Chassis/Enclosure"), ref("Chassis/Deep1")]
    put(tree, "Chassis/Blade1", blade1)
    depth = MAX_CHASSIS_DEPTH + 1
    for i in range(1, depth + 1):
        links = {"Contains": [ref(f"Chassis/Deep{i + 1}")]} if i < depth else {}
        status = {"State": "Enabled", "Health": "OK"}
        put(
            tree,
            f"Chassis/Deep{i}",
            {"@odata.id": f"{R}/Chassis/Deep{i}", "Id": f"Deep{i}", "Status": status, "Links": links},
        )
    results = {}
    for name, root in (("full", full), ("linked", tree)):
        async with serving(root, self_signed_cert) as server:
            c = to_bmc(server, self_signed_cert[0])
            try:
                results[name] = (await c.collect(), server.requests(), c.stats)
            finally:
                await c.aclose()
    full_result, _, _ = results["full"]
    linked, requests, stats = results["linked"]
    assert linked.errors == []
    keys = {s.key for s in linked.samples}
    assert {s.key for s in full_result.samples} <= keys  # the unlisted blades are all read
    for blade in ("Enclosure", "Blade1", "Blade2", "Blade3"):
        assert requests.count(f"{R}/Chassis/{blade}") == 1
    # Enclosure is listed; Blade1 one link away, Deep1 two ... Deep(MAX - 1) is the deepest read
    read = {k.label("chassis") for k in keys if k.label("chassis").startswith("Deep")}
    assert read == {f"Deep{i}" for i in range(1, MAX_CHASSIS_DEPTH)}
    assert f"{R}/Chassis/Deep{MAX_CHASSIS_DEPTH}" not in requests
    assert stats.chassis_beyond_depth == 1
