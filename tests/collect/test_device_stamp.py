"""Every series names its device: the scheduler stamps `device`, profiles cannot claim it, and the edge
detector keeps state, snapshots and events per device."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from agent.collect.device import DeviceStamp
from agent.collect.scheduler import Scheduler
from agent.collect.snmp.profiles import load_profiles
from agent.detect.scoring import EdgeScorer
from shared.clock import FakeClock
from shared.detect import DetectConfig, DetectorBank
from shared.detect.snapshot import file_name
from shared.model import CollectResult, Event, Limits, Sample, SeriesKey, Severity

pytestmark = pytest.mark.unit

UPTIME = SeriesKey.of("snmp_uptime_seconds")
PORT = SeriesKey.of("net_if_receive_bytes_per_second", {"interface": "Ethernet1", "index": "1"})


class SameProfile:
    """Two of these are two devices of one profile: identical keys, as the SNMP collector makes them."""

    def __init__(self, name: str, clock: FakeClock, spoof: bool = False) -> None:
        self.name, self.clock, self.spoof = name, clock, spoof

    @property
    def target(self) -> str:
        return self.name

    @property
    def interval_s(self) -> float:
        return 10.0

    async def start(self) -> None:
        return None

    async def collect(self) -> CollectResult:
        now = self.clock.now_ms()
        spoofed = SeriesKey.of("hw_health", {"device": "someone-else", "sensor": "PSU1"})
        keys = [UPTIME, PORT, *([spoofed] if self.spoof else [])]
        return CollectResult(
            "whatever-the-collector-said",
            [Sample(k, now, 1.0) for k in keys],
            [Event.of(now, "snmp.restart", Severity.WARNING, "not-the-device")],
            limits={PORT: Limits(crit_high=5.0)},
        )

    async def aclose(self) -> None:
        return None


async def test_two_devices_of_one_profile_reach_the_sink_as_distinct_series_with_their_device() -> None:
    clock = FakeClock()
    got: list[CollectResult] = []
    sched = Scheduler(
        [SameProfile("sw-a", clock), SameProfile("sw-b", clock, spoof=True)], got.append, clock, seed=1
    )
    await sched.start()
    try:
        for _ in range(24):  # both phases lie within one 10 s interval
            await clock.advance(0.5)
    finally:
        await sched.aclose()
    by_target = {r.target: r for r in got}
    assert set(by_target) == {"sw-a", "sw-b"}
    a, b = by_target["sw-a"], by_target["sw-b"]
    assert [s.key for s in a.samples] == [
        SeriesKey.of("snmp_uptime_seconds", {"device": "sw-a"}),
        SeriesKey.of(
            "net_if_receive_bytes_per_second", {"interface": "Ethernet1", "index": "1", "device": "sw-a"}
        ),
    ]
    # a `device` label a collector (or a profile) set is replaced by the configured name
    assert [dict(s.key.labels)["device"] for s in b.samples] == ["sw-b", "sw-b", "sw-b"]
    assert b.samples[2].key == SeriesKey.of("hw_health", {"device": "sw-b", "sensor": "PSU1"})
    assert {s.key for s in a.samples}.isdisjoint({s.key for s in b.samples})
    assert list(a.limits) == [a.samples[1].key] and a.limits[a.samples[1].key] == Limits(crit_high=5.0)
    assert [e.source for e in a.events] == ["sw-a"] and [e.source for e in b.events] == ["sw-b"]


def test_stamped_keys_are_reused_across_polls_and_the_memo_is_bounded() -> None:
    stamp = DeviceStamp("sw-a", max_keys=2)
    first = stamp.key(UPTIME)
    assert stamp.key(UPTIME) is first
    stamp.key(PORT)
    stamp.key(SeriesKey.of("third"))  # over the bound: the memo starts over, answers stay right
    assert stamp.key(UPTIME) == first and len(stamp._keys) == 2


def test_a_profile_that_declares_a_device_label_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "sneaky.yaml").write_text(
        "name: sneaky\n"
        "sysobjectid: ['1.3.6.1.4.1.99999.*']\n"
        "tables:\n"
        "  - name: t\n"
        "    labels: {device: 1.3.6.1.2.1.2.2.1.2}\n"
        "    metrics: [{name: x, oid: 1.3.6.1.2.1.2.2.1.10}]\n"
    )
    with caplog.at_level(logging.ERROR):
        profiles = load_profiles((tmp_path,))
    assert "sneaky" not in profiles.profiles
    assert "label 'device' is reserved for the configured device name" in caplog.text


def test_edge_detector_state_snapshots_and_events_are_per_device(tmp_path: Path) -> None:
    scorer = EdgeScorer(DetectConfig(), tmp_path)
    stamps = {d: DeviceStamp(d) for d in ("sw-a", "sw-b")}
    rng = np.random.default_rng(7)
    events = []
    for tick in range(600):
        ts = 1_700_000_000_000 + tick * 60_000
        for device, stamp in stamps.items():
            value = 50.0 + float(rng.standard_normal())
            if device == "sw-b" and tick == 500:
                value += 30.0  # only sw-b misbehaves; sw-a's identical series must not notice
            result = stamp.result(CollectResult(device, [Sample(PORT, ts, value)]))
            events.extend(scorer.score(result, monotonic_s=float(tick)).events)
    sw_b = 'net_if_receive_bytes_per_second{device="sw-b",index="1",interface="Ethernet1"}'
    assert [(e.kind, e.source) for e in events] == [("anomaly.onset", sw_b), ("anomaly.end", sw_b)]
    assert sum(scorer.states().values()) == 2  # one series per device, not one shared
    scorer.save_all()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(file_name(d) for d in stamps)
    restored = DetectorBank.load(tmp_path / file_name("sw-a"), DetectConfig())
    assert len(restored) == 1
