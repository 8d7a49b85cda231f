"""One behaviour, every backend: the same batches in give the same answers out."""

from __future__ import annotations

import numpy as np
import pytest

from hub.matchers import Matcher, MatchOp
from hub.store.base import Agg, RangeQuery, SeriesColumns, SeriesResult
from shared.model import Batch, BatchClass, Event, SeriesKey, SeriesPoints, Severity
from tests.store.conftest import T0, Backend

pytestmark = pytest.mark.integration

STEP_S = 10
N = 720  # two hours at 10 s
HOUR = 3_600_000


def points(offset: float, n: int = N, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Quarter-step values, so every sum is exact in binary floating point on every backend."""
    i = np.arange(start, start + n, dtype=np.int64)
    return T0 + i * STEP_S * 1000, ((i * 7) % 37) * 0.25 + offset


def series(metric: str, labels: dict[str, str], offset: float, n: int = N, start: int = 0) -> SeriesPoints:
    ts, vals = points(offset, n, start)
    return SeriesPoints(SeriesKey.of(metric, labels), ts, vals)


def fleet_batches() -> list[tuple[str, Batch]]:
    return [
        ("edge-1", Batch(100, 1, (series("cpu", {"host": "a"}, 0.0), series("cpu", {"host": "b"}, 10.0)))),
        ("edge-1", Batch(100, 2, (series("mem", {"host": "a"}, 50.0),))),
        # The payload's own `agent` label is replaced by the certificate identity.
        ("edge-2", Batch(7, 1, (series("cpu", {"host": "a", "agent": "spoofed"}, 20.0),))),
    ]


def write_fleet(backend: Backend) -> None:
    store = backend.open()
    for agent, batch in fleet_batches():
        assert store.write(agent, batch).accepted_points == batch.point_count


def as_dict(results: list[SeriesResult]) -> dict[str, tuple[list[int], list[float]]]:
    return {str(r.key): (r.timestamps_ms.tolist(), r.values.tolist()) for r in results}


def expected_buckets(ts: np.ndarray, vals: np.ndarray, step: int, agg: Agg) -> tuple[list[int], list[float]]:
    """Bucket aggregation written the slow obvious way, independent of the store's vectorized code."""
    out_ts: list[int] = []
    out: list[float] = []
    for bucket in sorted({int(t) // step * step for t in ts}):
        vs = [float(v) for t, v in zip(ts, vals, strict=True) if int(t) // step * step == bucket]
        value = {
            Agg.AVG: sum(vs) / len(vs),
            Agg.MIN: min(vs),
            Agg.MAX: max(vs),
            Agg.SUM: sum(vs),
            Agg.COUNT: float(len(vs)),
            Agg.LAST: vs[-1],
        }[agg]
        out_ts.append(bucket)
        out.append(value)
    return out_ts, out


def test_written_points_read_back_exactly_with_the_agent_label(backend: Backend) -> None:
    write_fleet(backend)
    store = backend.opened[0]
    got = as_dict(store.query(RangeQuery("cpu", T0, T0 + 2 * HOUR)))
    ts, _ = points(0.0)
    assert list(got) == [
        'cpu{agent="edge-1",host="a"}',
        'cpu{agent="edge-1",host="b"}',
        'cpu{agent="edge-2",host="a"}',
    ]
    assert got['cpu{agent="edge-1",host="a"}'] == (ts.tolist(), points(0.0)[1].tolist())
    assert got['cpu{agent="edge-2",host="a"}'] == (ts.tolist(), points(20.0)[1].tolist())


def test_a_range_returns_only_points_inside_it_inclusive(backend: Backend) -> None:
    write_fleet(backend)
    start, end = T0 + 60_000, T0 + 120_000
    got = as_dict(backend.opened[0].query(RangeQuery("mem", start, end)))
    ts, vals = points(50.0)
    keep = (ts >= start) & (ts <= end)
    assert got == {'mem{agent="edge-1",host="a"}': (ts[keep].tolist(), vals[keep].tolist())}


@pytest.mark.parametrize("step", [70_000, 600_000, HOUR], ids=["raw-70s", "5m-rollup-10m", "1h-rollup"])
def test_step_aggregation_gives_each_function_per_aligned_bucket(backend: Backend, step: int) -> None:
    write_fleet(backend)
    store = backend.opened[0]
    ts, vals = points(10.0)
    for agg in Agg:
        q = RangeQuery("cpu", T0, T0 + 2 * HOUR, (Matcher("host", MatchOp.EQ, "b"),), step_ms=step, agg=agg)
        assert as_dict(store.query(q)) == {
            'cpu{agent="edge-1",host="b"}': expected_buckets(ts, vals, step, agg)
        }, agg


@pytest.mark.parametrize(
    ("matcher", "expected"),
    [
        (Matcher("host", MatchOp.EQ, "a"), ['cpu{agent="edge-1",host="a"}', 'cpu{agent="edge-2",host="a"}']),
        (Matcher("host", MatchOp.NE, "a"), ['cpu{agent="edge-1",host="b"}']),
        (Matcher("agent", MatchOp.RE, "edge-[2-9]"), ['cpu{agent="edge-2",host="a"}']),
        (Matcher("agent", MatchOp.RE, "edge"), []),  # anchored, as in PromQL
        (Matcher("agent", MatchOp.NRE, "edge-1"), ['cpu{agent="edge-2",host="a"}']),
    ],
    ids=["eq", "ne", "re", "re-anchored", "nre"],
)
def test_label_matchers_select_series_with_promql_semantics(
    backend: Backend, matcher: Matcher, expected: list[str]
) -> None:
    write_fleet(backend)
    store = backend.opened[0]
    got = store.query(RangeQuery("cpu", T0, T0 + 2 * HOUR, (matcher,), step_ms=HOUR, agg=Agg.COUNT))
    assert [str(r.key) for r in got] == expected
    assert all(r.values.tolist() == [360.0, 360.0] for r in got)
    assert [str(k) for k in store.series("cpu", (matcher,))] == expected


def test_series_lists_every_key_with_its_agent_label(backend: Backend) -> None:
    write_fleet(backend)
    assert [str(k) for k in backend.opened[0].series()] == [
        'cpu{agent="edge-1",host="a"}',
        'cpu{agent="edge-1",host="b"}',
        'cpu{agent="edge-2",host="a"}',
        'mem{agent="edge-1",host="a"}',
    ]


def test_a_resent_batch_is_a_duplicate_and_changes_nothing_even_after_reopening(backend: Backend) -> None:
    write_fleet(backend)
    agent, batch = fleet_batches()[0]
    changed = Batch(batch.boot_epoch, batch.seq, (series("cpu", {"host": "a"}, 99.0),))
    assert backend.opened[0].write(agent, changed).duplicate is True
    backend.opened[0].close()
    reopened = backend.open()
    assert reopened.write(agent, changed).duplicate is True
    # Same seq under another boot epoch or agent is a different batch.
    assert reopened.write("edge-3", changed).duplicate is False
    got = as_dict(reopened.query(RangeQuery("cpu", T0, T0 + 2 * HOUR, (Matcher("host", MatchOp.EQ, "a"),))))
    assert got['cpu{agent="edge-1",host="a"}'][1] == points(0.0)[1].tolist()
    assert got['cpu{agent="edge-3",host="a"}'][1] == points(99.0)[1].tolist()


def test_points_written_as_columns_read_back_as_written_and_share_the_batch_id(backend: Backend) -> None:
    store = backend.open()
    pushed = (series("cpu", {"host": "a"}, 0.0), series("cpu", {"host": "b"}, 10.0, n=3))
    columns = SeriesColumns.of_series(pushed)
    assert store.write_columns("push:telegraf", 5, 1, columns).accepted_points == N + 3
    # The same id as a batch of series (or as columns again) is the same batch.
    assert store.write("push:telegraf", Batch(5, 1, pushed)).duplicate is True
    assert store.write_columns("push:telegraf", 5, 1, columns).duplicate is True
    got = as_dict(store.query(RangeQuery("cpu", T0, T0 + 2 * HOUR)))
    assert got == {
        'cpu{agent="push:telegraf",host="a"}': (points(0.0)[0].tolist(), points(0.0)[1].tolist()),
        'cpu{agent="push:telegraf",host="b"}': (points(10.0, n=3)[0].tolist(), points(10.0, n=3)[1].tolist()),
    }


def test_a_later_batch_overwrites_points_with_the_same_timestamp(backend: Backend) -> None:
    if backend.name == "influx-victoriametrics":
        pytest.skip("VictoriaMetrics keeps every sample of a timestamp; InfluxDB (tested below) overwrites")
    store = backend.open()
    store.write("edge-1", Batch(1, 1, (series("fan", {}, 0.0, n=10),)))
    store.write("edge-1", Batch(1, 2, (series("fan", {}, 5.0, n=10, start=5),)))
    (result,) = store.query(RangeQuery("fan", T0, T0 + HOUR))
    ts, _ = points(0.0, n=15)
    assert result.timestamps_ms.tolist() == ts.tolist()
    assert result.values.tolist() == points(0.0, n=5)[1].tolist() + points(5.0, n=10, start=5)[1].tolist()


def test_max_points_widens_the_step_so_no_series_exceeds_it(backend: Backend) -> None:
    write_fleet(backend)
    q = RangeQuery("mem", T0, T0 + 2 * HOUR - 1, max_points=4, agg=Agg.COUNT)
    (result,) = backend.opened[0].query(q)
    # 2 h over 4 points is a 30 min step, a multiple of the 5 min rollup.
    assert result.timestamps_ms.tolist() == [T0 + k * 1_800_000 for k in range(4)]
    assert result.values.tolist() == [180.0] * 4


def test_events_come_back_newest_first_within_the_range(backend: Backend) -> None:
    store = backend.open()
    trap = Event.of(T0 + 1000, "trap", Severity.WARNING, "sw1", "linkDown", {"ifIndex": "3"})
    onset = Event.of(T0 + 5000, "anomaly", Severity.CRITICAL, "cpu", "onset")
    store.write("edge-1", Batch(1, 1, events=(trap, onset), batch_class=BatchClass.EVENTS))
    store.write("edge-2", Batch(1, 1, events=(Event.of(T0 + 9000, "trap", Severity.INFO, "sw2"),)))
    assert store.events(T0, T0 + 6000) == [("edge-1", onset), ("edge-1", trap)]
    assert store.events(T0, T0 + 10_000, limit=1) == [
        ("edge-2", Event.of(T0 + 9000, "trap", Severity.INFO, "sw2"))
    ]


def test_max_points_above_the_point_count_returns_the_raw_points(backend: Backend) -> None:
    write_fleet(backend)
    q = RangeQuery("mem", T0, T0 + 2 * HOUR, max_points=1000)
    ts, vals = points(50.0)
    assert as_dict(backend.opened[0].query(q)) == {
        'mem{agent="edge-1",host="a"}': (ts.tolist(), vals.tolist())
    }


@pytest.mark.parametrize("start", [0, T0 - 30 * 24 * HOUR], ids=["epoch", "a-month-before"])
def test_the_step_follows_the_data_present_not_the_requested_span(backend: Backend, start: int) -> None:
    write_fleet(backend)
    # 720 points over 2 h, asked for at most 100 over a range far wider than the data.
    q = RangeQuery("mem", start, T0 + 30 * 24 * HOUR, max_points=100, agg=Agg.COUNT)
    (result,) = backend.opened[0].query(q)
    # 7190 s of data over 100 points is a 72 s step (rounded to whole seconds): 100 buckets, not 1.
    assert result.timestamps_ms.shape[0] == 100
    assert result.timestamps_ms[0] == T0 // 72_000 * 72_000
    assert result.values.sum() == 720.0


def test_max_points_of_one_answers_one_bucket_holding_every_point(backend: Backend) -> None:
    write_fleet(backend)
    (result,) = backend.opened[0].query(RangeQuery("mem", T0, T0 + 2 * HOUR, max_points=1, agg=Agg.COUNT))
    assert result.values.tolist() == [720.0]


def test_events_filtered_by_kind_are_found_behind_many_newer_events_of_other_kinds(backend: Backend) -> None:
    store = backend.open()
    onsets = tuple(Event.of(T0 + i, "anomaly.onset", Severity.CRITICAL, "cpu", "onset") for i in range(3))
    traps = tuple(Event.of(T0 + 1000 + i, "trap", Severity.INFO, "sw1", "linkDown") for i in range(50))
    store.write("edge-1", Batch(1, 1, events=onsets, batch_class=BatchClass.EVENTS))
    store.write("edge-1", Batch(1, 2, events=traps, batch_class=BatchClass.EVENTS))
    assert store.events(T0, T0 + HOUR, limit=10, kind="anomaly") == [("edge-1", e) for e in onsets[::-1]]
    assert len(store.events(T0, T0 + HOUR, limit=10, kind="trap")) == 10
    assert store.events(T0, T0 + HOUR, limit=10, kind="anomaly.onset%") == []  # a prefix, not a LIKE pattern
    assert len(store.events(T0, T0 + HOUR, limit=100)) == 53


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("dge-1|edge-2", ['cpu{agent="edge-2",host="a"}']),  # the whole alternation is anchored
        ("(.*.*)*X", []),  # catastrophic for a backtracking engine, linear in RE2
        (
            "edge-\\d",
            ['cpu{agent="edge-1",host="a"}', 'cpu{agent="edge-1",host="b"}', 'cpu{agent="edge-2",host="a"}'],
        ),
    ],
    ids=["alternation", "evil", "perl-class"],
)
def test_regex_matchers_are_anchored_re2_on_every_backend(
    backend: Backend, pattern: str, expected: list[str]
) -> None:
    write_fleet(backend)
    store = backend.opened[0]
    matcher = Matcher("agent", MatchOp.RE, pattern)
    got = store.query(RangeQuery("cpu", T0, T0 + 2 * HOUR, (matcher,), step_ms=HOUR, agg=Agg.COUNT))
    assert [str(r.key) for r in got] == expected
    assert [str(k) for k in store.series("cpu", (matcher,))] == expected


def test_a_regex_matcher_on_a_missing_label_matches_the_empty_string(backend: Backend) -> None:
    write_fleet(backend)
    store = backend.opened[0]
    got = store.series(None, (Matcher("rack", MatchOp.RE, "x?"), Matcher("host", MatchOp.EQ, "a")))
    assert [str(k) for k in got] == [
        'cpu{agent="edge-1",host="a"}',
        'cpu{agent="edge-2",host="a"}',
        'mem{agent="edge-1",host="a"}',
    ]
