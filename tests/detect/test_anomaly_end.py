"""Anomaly ends: every end pairs with an earlier onset of its series, only once the series is normal again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shared.detect import DetectConfig, DetectorBank, snapshot
from shared.detect.bank import END_KIND, EVENT_KIND
from shared.detect.gate import END_QUIET_POINTS
from shared.model import Event, Limits, SeriesKey
from tests.detect.conftest import bank_for, feed, noise, ticks

pytestmark = pytest.mark.unit

KEYS = tuple(SeriesKey.of("temp", {"device": "bmc1", "sensor": str(i)}) for i in range(6))


def _assert_paired(events: list[Event]) -> int:
    """Per series, every end follows an onset of that series since its previous end, and carries the
    attributes of the latest such onset plus its time; returns how many ends there were."""
    open_onset: dict[str, Event] = {}
    ends = 0
    for e in events:
        if e.kind == EVENT_KIND:
            open_onset[e.source] = e
            continue
        assert e.kind == END_KIND
        onset = open_onset.pop(e.source)  # KeyError: an end without an open onset of its series
        assert e.ts_ms > onset.ts_ms
        attrs = dict(e.attributes)
        assert attrs.pop("onset_ms") == str(onset.ts_ms)
        assert attrs == dict(onset.attributes)
        assert e.severity == onset.severity
        ends += 1
    return ends


def test_every_end_pairs_with_an_earlier_onset_of_the_same_series() -> None:
    n = 900
    rng = np.random.default_rng(3)
    ts = ticks(n)
    values = np.stack([noise(n, seed=s) for s in range(len(KEYS))], axis=1)
    # Bursts of outliers of random length and sign at random places, after the warm-up.
    for _ in range(25):
        col, start, length = rng.integers(0, len(KEYS)), rng.integers(150, n - 20), rng.integers(1, 6)
        values[start : start + length, col] += rng.choice([-40.0, 40.0])
    limits = {KEYS[0]: Limits(crit_high=54.0, warn_high=53.0)}  # series 0 also crosses device limits
    run = feed(bank_for(), KEYS, ts, values, limits)
    ends = _assert_paired(run.events)
    assert ends >= 15  # bursts do end: the pairing is checked on many real ends
    # Only the last few points can leave an event open: a series without an open onset at the end has
    # an end for each of its onsets.
    assert len(run.onsets) - ends == len({e.source for e in run.events if e.ts_ms > ts[-10]})


def test_a_persistent_anomaly_emits_no_end_until_it_is_over(key: SeriesKey) -> None:
    ts = ticks(200)
    values = np.full(200, 70.0)
    values[50:150] = 95.0  # beyond the critical limit for 100 points
    run = feed(bank_for(), [key], ts, values, {key: Limits(crit_high=90.0)})
    assert run.event_ticks(ts) == [50]
    # The end is the END_QUIET_POINTS-th point back inside the limit, not the first one.
    assert run.end_ticks(ts) == [150 + END_QUIET_POINTS - 1]
    end = run.ends[0]
    assert dict(end.attributes)["reason"] == "limit.crit_high"
    assert float(dict(end.attributes)["value"]) == 95.0  # the onset's value: that is what it pairs with
    assert "back to normal after 6" in end.message  # 100 one-minute points after the onset: 6000 s


def test_one_quiet_point_inside_an_anomaly_does_not_end_it(key: SeriesKey) -> None:
    ts = ticks(400)
    values = noise(400)
    values[[300, 302, 304]] += 40.0  # a burst with quiet points inside it
    # EWMA keeps flagging the burst's later outliers (robust's rarity scores them lower after the first).
    run = feed(bank_for(detector="ewma"), [key], ts, values)
    assert run.event_ticks(ts) == [300]
    assert run.end_ticks(ts) == [304 + END_QUIET_POINTS]
    _assert_paired(run.events)


def test_limit_hovering_around_its_threshold_ends_once_at_the_end(key: SeriesKey) -> None:
    ts = ticks(40)
    values = np.full(40, 70.0)
    values[10:20] = [95, 85, 95, 85, 85, 95, 85, 95, 95, 85]  # never three points inside in a row
    run = feed(bank_for(), [key], ts, values, {key: Limits(crit_high=90.0)})
    assert run.event_ticks(ts) == [10, 12, 15, 17]  # onsets exactly as before ends existed
    assert run.end_ticks(ts) == [19 + END_QUIET_POINTS - 1]
    assert _assert_paired(run.events) == 1


def test_missing_points_neither_end_nor_prolong_an_event(key: SeriesKey) -> None:
    ts = ticks(30)
    values = np.full(30, 70.0)
    values[5] = 95.0
    values[6:16] = np.nan  # the device stopped answering for ten polls
    run = feed(bank_for(), [key], ts, values, {key: Limits(crit_high=90.0)})
    assert run.event_ticks(ts) == [5]
    assert run.end_ticks(ts) == [16 + END_QUIET_POINTS - 1]


def test_an_anomaly_that_never_ends_leaves_no_state_once_its_series_is_forgotten(key: SeriesKey) -> None:
    bank = DetectorBank(DetectConfig(forget_after_s=600))
    feed(bank, [key], ticks(3), np.array([70.0, 95.0, 95.0]), {key: Limits(crit_high=90.0)})
    assert len(bank._open) == 1
    other = SeriesKey.of("fan")
    feed(bank, [other], ticks(30)[20:], np.full(10, 1.0))  # `key` never reports again
    assert len(bank) == 1 and bank._open == {}
    # Open onsets are at most one per series, however long the anomaly lasts.
    run = feed(bank, [other], ticks(1000)[30:], np.full(970, 100.0), {other: Limits(crit_high=50.0)})
    assert (len(run.onsets), len(run.ends), len(bank._open)) == (1, 0, 1)


def test_an_open_event_survives_a_restart_and_its_end_carries_the_onset(
    tmp_path: Path, key: SeriesKey
) -> None:
    path = tmp_path / "detect.npz"
    limits = {key: Limits(crit_high=90.0)}
    before = bank_for()
    first = feed(before, [key], ticks(5), np.array([70.0, 95.0, 96.0, 97.0, 96.0]), limits)
    before.save(path)
    after = DetectorBank.load(path, DetectConfig())
    run = feed(after, [key], ticks(10)[5:], np.full(5, 70.0), limits)
    assert run.end_ticks(ticks(10)[5:]) == [END_QUIET_POINTS - 1]
    assert _assert_paired(first.events + run.events) == 1


def test_a_snapshot_from_before_anomaly_ends_restores_without_relearning(
    tmp_path: Path, key: SeriesKey
) -> None:
    path = tmp_path / "detect.npz"
    bank = bank_for()
    feed(bank, [key], ticks(300), noise(300))
    bank.save(path)
    header, arrays = snapshot.read(path)
    del header["open"]
    old = {k: v for k, v in arrays.items() if not k.endswith(("gate.open", "gate.quiet"))}
    assert len(old) == len(arrays) - 2
    snapshot.write(path, json.loads(json.dumps(header)), old)
    restored = DetectorBank.load(path, DetectConfig())
    assert restored.states() == {"learning": 0, "active": 1, "stale": 0}
    values = noise(330)[300:]
    values[10] += 40.0
    run = feed(restored, [key], ticks(330)[300:], values)
    assert run.event_ticks(ticks(330)[300:]) == [10]
    assert run.end_ticks(ticks(330)[300:]) == [10 + END_QUIET_POINTS]
