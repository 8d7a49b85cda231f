"""The bank: many series per step, series that appear and vanish, snapshots, and bad input."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.detect import DetectConfig, DetectorBank, DetectRule
from shared.detect import snapshot as snap
from shared.model import SeriesKey
from tests.detect.conftest import MINUTE_MS, T0_MS, bank_for, feed, noise, ticks

pytestmark = pytest.mark.unit

KEYS = [SeriesKey.of("if.in", {"port": str(p)}) for p in range(3)]


def _signal(n: int) -> np.ndarray:
    values = np.stack([noise(n, 50.0 * (k + 1), 1.0, seed=k) for k in range(len(KEYS))], axis=1)
    if n > 250:
        values[250, 1] += 40.0
    return values


def test_series_in_one_step_are_scored_as_if_alone() -> None:
    ts = ticks(300)
    values = _signal(300)
    together = feed(bank_for(), KEYS, ts, values)
    alone = feed(bank_for(), KEYS[1:2], ts, values[:, 1].copy())
    np.testing.assert_array_equal(together.scores[:, 1], alone.scores[:, 0])
    assert together.event_ticks(ts) == [250] == alone.event_ticks(ts)
    assert together.events[0].source == str(KEYS[1])


def test_poll_order_and_fresh_key_objects_do_not_change_the_answer() -> None:
    ts = ticks(300)
    values = _signal(300)
    bank = bank_for()
    reference = feed(bank_for(), KEYS, ts, values)
    for i in range(300):
        order = [2, 0, 1] if i % 2 else [1, 2, 0]
        keys = [SeriesKey.of("if.in", {"port": str(p)}) for p in order]
        obs = bank.observe(keys, np.full(3, ts[i]), values[i, order])
        np.testing.assert_array_equal(obs.scores, reference.scores[i, order])


def test_series_that_appears_then_vanishes_goes_stale_then_is_forgotten() -> None:
    config = DetectConfig(stale_after_s=600, forget_after_s=3600)
    bank = DetectorBank(config)
    a, b = SeriesKey.of("temp", {"s": "a"}), SeriesKey.of("temp", {"s": "b"})
    feed(bank, [a], ticks(10), noise(10))
    run = feed(bank, [a, b], ticks(30)[10:], np.stack([noise(30)[10:], noise(20, seed=3)], axis=1))
    assert len(bank) == 2
    assert run.scores.shape == (20, 2)
    feed(bank, [a], ticks(50)[30:], noise(20))  # b silent for 20 minutes: stale
    assert bank.states() == {"learning": 1, "active": 0, "stale": 1}
    feed(bank, [a], ticks(120)[50:], noise(70))  # b silent for 90 minutes: forgotten
    assert len(bank) == 1
    assert bank.states()["stale"] == 0
    feed(bank, [a, b], ticks(121)[120:], np.array([50.0, 50.0]))
    assert len(bank) == 2  # b comes back as a new series


def test_max_series_drops_and_counts_new_series() -> None:
    bank = DetectorBank(DetectConfig(max_series=2))
    obs = bank.observe(KEYS, np.full(3, T0_MS), np.array([1.0, 2.0, 3.0]))
    assert len(bank) == 2
    assert bank.dropped_series == 1
    assert obs.scores.tolist() == [0.0, 0.0, 0.0]


def test_points_given_by_series_number_score_as_one_poll_per_round_does() -> None:
    """`observe_series` (a push: each key once, points by number, several a series) gives the scores and
    events of feeding the same points poll by poll, and counts points of series it has no room for."""
    ts = ticks(300)
    values = _signal(300)
    reference = feed(bank_for(), KEYS, ts, values)
    bank = bank_for()
    events = []
    for lo in range(0, 300, 60):  # 60 polls of every series in one call, series interleaved
        index = np.tile(np.arange(3), 60)
        obs = bank.observe_series(KEYS, index, np.repeat(ts[lo : lo + 60], 3), values[lo : lo + 60].ravel())
        np.testing.assert_array_equal(obs.scores, reference.scores[lo : lo + 60].ravel())
        events += obs.events
    assert [(e.kind, e.source, e.ts_ms) for e in events] == [
        (e.kind, e.source, e.ts_ms) for e in reference.events
    ]
    assert {e.kind for e in events} == {"anomaly.onset", "anomaly.end"}

    capped = DetectorBank(DetectConfig(max_series=2))
    extra = SeriesKey.of("if.in", {"port": "unused"})
    obs = capped.observe_series([*KEYS, extra], np.array([0, 1, 2, 2, 2]), np.arange(5) + T0_MS, np.ones(5))
    assert len(capped) == 2 and capped.dropped_series == 3  # one per point of the series left out
    assert capped.last_seen_ms([extra]).tolist() == [-1]  # a key without points is not added


def test_infinite_values_and_mismatched_shapes_are_rejected_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bank = bank_for()
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            bank.observe(KEYS, np.full(3, T0_MS + i * MINUTE_MS), np.array([1.0, np.inf, -np.inf]))
        bank.observe(KEYS, np.full(2, T0_MS), np.array([1.0, 2.0]))
    assert bank.rejected_points == 6 + 3
    assert len([r for r in caplog.records if "infinite" in r.message]) == 1
    assert len(bank) == 3


def test_duplicate_key_in_one_poll_keeps_the_first_point() -> None:
    bank = bank_for()
    obs = bank.observe([KEYS[0], KEYS[0]], np.full(2, T0_MS), np.array([1.0, 2.0]))
    assert len(bank) == 1
    assert bank.rejected_points == 1
    assert obs.scores.shape == (2,)


def test_save_then_load_continues_exactly_where_it_stopped(tmp_path: Path) -> None:
    ts = ticks(400)
    values = _signal(400)
    values[350, 2] -= 60.0
    path = tmp_path / "state" / "detect.npz"
    original = bank_for()
    feed(original, KEYS, ts[:300], values[:300])
    original.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["detect.npz"]  # no temporary file left behind
    restored = DetectorBank.load(path, DetectConfig())
    assert len(restored) == 3
    assert restored.states() == original.states()
    after_original = feed(original, KEYS, ts[300:], values[300:])
    after_restored = feed(restored, KEYS, ts[300:], values[300:])
    np.testing.assert_array_equal(after_original.scores, after_restored.scores)
    assert after_restored.events == after_original.events
    assert after_restored.event_ticks(ts[300:]) == [50]


def test_snapshot_is_npz_with_a_json_header_and_no_pickle(tmp_path: Path) -> None:
    path = tmp_path / "detect.npz"
    bank = bank_for()
    feed(bank, KEYS, ticks(5), _signal(5))
    bank.save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert "__header__" in npz.files
        assert all(npz[name].dtype != object for name in npz.files)
    header, _ = snap.read(path)
    assert (header["format"], header["version"]) == ("outpost-detect", snap.VERSION)


@pytest.mark.parametrize(("content", "level"), [(b"", "WARNING"), (b"not a zip", "WARNING"), (None, "INFO")])
def test_missing_or_corrupt_snapshot_gives_a_fresh_bank_and_one_log_line(
    tmp_path: Path, content: bytes | None, level: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "detect.npz"
    if content is not None:
        path.write_bytes(content)
    with caplog.at_level(logging.INFO, logger="shared.detect.bank"):
        bank = DetectorBank.load(path, DetectConfig())
    assert len(bank) == 0
    assert [r.levelname for r in caplog.records] == [level]  # a first start is not a warning


def test_snapshot_of_another_version_gives_a_fresh_bank(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "detect.npz"
    snap.write(path, {"version": 0, "groups": []}, {})
    with caplog.at_level(logging.WARNING, logger="shared.detect.bank"):
        bank = DetectorBank.load(path, DetectConfig())
    assert len(bank) == 0
    assert "version 0" in caplog.records[0].message


def test_series_whose_rule_changed_relearn_after_restore(tmp_path: Path) -> None:
    path = tmp_path / "detect.npz"
    temps = DetectRule(pattern="temp*", seasonality="none")
    bank = DetectorBank(DetectConfig(rules=[temps]))
    keys = [SeriesKey.of("temp.cpu"), SeriesKey.of("fan.rpm")]
    feed(bank, keys, ticks(200), np.stack([noise(200), noise(200, seed=2)], axis=1))
    bank.save(path)
    changed = DetectConfig(rules=[DetectRule(pattern="temp*", seasonality="daily")])
    restored = DetectorBank.load(path, changed)
    assert len(restored) == 1  # fan.rpm kept its baseline; temp.cpu starts over
    assert restored.states() == {"learning": 0, "active": 1, "stale": 0}


def test_maybe_save_writes_only_once_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "detect.npz"
    bank = DetectorBank(DetectConfig(snapshot_interval_s=300))
    assert bank.maybe_save(path, 1000.0)
    path.unlink()
    assert not bank.maybe_save(path, 1299.0)
    assert not path.exists()
    assert bank.maybe_save(path, 1300.0)


def test_state_per_series_fits_the_budget() -> None:
    assert bank_for().row_nbytes <= 2048
    assert bank_for(detector="ewma", seasonality="none").row_nbytes <= 128


def test_river_second_opinion_is_averaged_in_and_named_in_events(key: SeriesKey) -> None:
    ts = ticks(240)
    values = noise(240)
    values[220] += 40.0
    run = feed(bank_for(second_opinion="hst", warmup_points=210), [key], ts, values)
    assert run.event_ticks(ts) == [220]
    assert dict(run.events[0].attributes)["detector"] == "robust+hst"


def test_river_is_not_imported_unless_configured() -> None:
    code = (
        "import sys, numpy as np\n"
        "from shared.detect import DetectConfig, DetectorBank\n"
        "from shared.model import SeriesKey\n"
        "DetectorBank(DetectConfig()).observe([SeriesKey.of('a')], np.array([1]), np.array([1.0]))\n"
        "print('river' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_series_now_matching_another_rule_relearn_after_restore(tmp_path: Path) -> None:
    path = tmp_path / "detect.npz"
    temps, fans = DetectRule(pattern="temp*", seasonality="none"), DetectRule(pattern="*", seasonality="none")
    bank = DetectorBank(DetectConfig(rules=[temps, fans]))
    keys = [SeriesKey.of("temp.cpu"), SeriesKey.of("fan.rpm")]
    feed(bank, keys, ticks(200), np.stack([noise(200), noise(200, seed=2)], axis=1))
    bank.save(path)
    restored = DetectorBank.load(path, DetectConfig(rules=[fans, temps]))  # "*" now catches temp.cpu
    assert len(restored) == 1
    run = feed(restored, keys, ticks(201)[200:], np.array([[50.0, 50.0]]))
    assert run.scores.shape == (1, 2)
    assert len(restored) == 2
