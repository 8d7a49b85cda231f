"""The wire codec: any batch round-trips exactly; malformed input is refused with a reason."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import codec
from shared.errors import CodecError
from shared.model import (
    Batch,
    BatchClass,
    Event,
    Heartbeat,
    Limits,
    MetricKind,
    SeriesKey,
    SeriesPoints,
    Severity,
    TargetState,
)
from shared.pb.outpost.v1 import batch_pb2 as pb
from tests.support.wire import raw_single_series_envelope

pytestmark = pytest.mark.unit

_text = st.text(min_size=1, max_size=20)
_labels = st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=4)


@st.composite
def series_points(draw: st.DrawFn) -> SeriesPoints:
    n = draw(st.integers(0, 30))
    start = draw(st.integers(-(2**40), 2**42))
    gaps = draw(st.lists(st.integers(1, 10**7), min_size=n, max_size=n))
    ts = np.asarray(np.cumsum(gaps) + start, dtype=np.int64) if n else np.zeros(0, dtype=np.int64)
    values = np.asarray(draw(st.lists(st.floats(allow_nan=True), min_size=n, max_size=n)), dtype=np.float64)
    scored = draw(st.booleans())
    scores = (
        np.asarray(draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n)), dtype=np.float32)
        if scored and n
        else None
    )
    return SeriesPoints(
        SeriesKey.of(draw(_text), draw(_labels)),
        ts,
        values,
        draw(st.sampled_from(MetricKind)),
        draw(st.text(max_size=5)),
        scores,
        draw(st.none() | _limits),
    )


_limit = st.none() | st.floats(allow_nan=False)
# A Limits with no limit at all travels as "no limits" (all NaN): the strategy draws at least one.
_limits = st.builds(Limits, _limit, _limit, _limit, _limit).filter(
    lambda x: (x.warn_high, x.crit_high, x.warn_low, x.crit_low) != (None, None, None, None)
)
_u32 = st.integers(0, 2**32 - 1)
_heartbeats = st.builds(
    Heartbeat,
    st.integers(-(2**62), 2**62),
    st.text(max_size=20),
    _u32,
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(-(2**62), 2**62),
    st.lists(st.builds(TargetState, st.text(max_size=20), st.booleans(), _u32), max_size=4).map(tuple),
)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    events = draw(
        st.lists(
            st.builds(
                Event.of,
                st.integers(0, 2**50),
                _text,
                st.sampled_from(Severity),
                _text,
                st.text(max_size=30),
                _labels,
            ),
            max_size=3,
        )
    )
    return Batch(
        draw(st.integers(0, 2**63)),
        draw(st.integers(1, 2**63)),
        tuple(draw(st.lists(series_points(), max_size=5))),
        tuple(events),
        draw(st.sampled_from(BatchClass)),
        draw(st.none() | _heartbeats),
    )


def assert_same(a: Batch, b: Batch) -> None:
    assert (a.boot_epoch, a.seq, a.batch_class, a.events) == (b.boot_epoch, b.seq, b.batch_class, b.events)
    assert a.heartbeat == b.heartbeat
    assert len(a.series) == len(b.series)
    for x, y in zip(a.series, b.series, strict=True):
        assert (x.key, x.kind, x.unit, x.limits) == (y.key, y.kind, y.unit, y.limits)
        np.testing.assert_array_equal(x.timestamps_ms, y.timestamps_ms)
        np.testing.assert_array_equal(x.values, y.values)  # NaN == NaN here
        if x.scores is None or len(x) == 0:
            assert y.scores is None
        else:
            assert y.scores is not None
            np.testing.assert_array_equal(x.scores, y.scores)


@settings(max_examples=200, deadline=None)
@given(batches(), st.booleans())
def test_any_batch_decodes_to_itself(batch: Batch, compress: bool) -> None:
    header, decoded = codec.decode(codec.encode(batch, compress=compress))
    assert header.batch_id == batch.batch_id
    assert header.point_count == batch.point_count
    assert_same(batch, decoded)


def _old_agent_envelope() -> tuple[bytes, pb.Batch]:
    """An envelope as agents before heartbeats and limits built it: generated code, none of the new fields."""
    raw = pb.Batch(boot_epoch=7, seq=3, base_time_unix_ms=1_000, batch_class=pb.BATCH_CLASS_METRICS)
    raw.symbols.extend(["", "temp", "device", "bmc1", "C"])
    cols = raw.series
    cols.metric_refs.extend([1, 1])
    cols.label_counts.extend([1, 0])
    cols.label_refs.extend([2, 3])
    cols.kinds.extend([pb.METRIC_KIND_GAUGE, pb.METRIC_KIND_RATE])
    cols.unit_refs.extend([4, 0])
    cols.point_counts.extend([2, 1])
    cols.time_deltas_ms.extend([0, 500, 20])
    cols.values.extend([40.5, 41.0, 3.0])
    ev = raw.events.add(time_unix_ms=1_200, kind="anomaly.onset", severity=pb.SEVERITY_WARNING, source="s")
    ev.attributes.add(name="metric", value="temp")
    env = pb.Envelope(
        schema_version=1,
        encoding=pb.ENCODING_NONE,
        payload=raw.SerializeToString(),
        boot_epoch=7,
        seq=3,
        batch_class=pb.BATCH_CLASS_METRICS,
        uncompressed_size=raw.ByteSize(),
        point_count=3,
    )
    return env.SerializeToString(), raw


def test_an_envelope_from_an_agent_without_the_new_fields_decodes_exactly_as_before() -> None:
    data, raw = _old_agent_envelope()
    assert not raw.HasField("heartbeat") and not raw.series.limit_crit_high
    header, batch = codec.decode(data)
    assert (header.batch_id, header.point_count, header.batch_class) == ("7-3", 3, BatchClass.METRICS)
    assert batch.heartbeat is None
    assert [(str(s.key), s.kind, s.unit, s.limits, s.scores) for s in batch.series] == [
        ('temp{device="bmc1"}', MetricKind.GAUGE, "C", None, None),
        ("temp{}", MetricKind.RATE, "", None, None),
    ]
    assert [s.timestamps_ms.tolist() for s in batch.series] == [[1_000, 1_500], [1_020]]
    assert [s.values.tolist() for s in batch.series] == [[40.5, 41.0], [3.0]]
    assert batch.events == (Event(1_200, "anomaly.onset", Severity.WARNING, "s", "", (("metric", "temp"),)),)


def test_a_batch_without_limits_adds_no_byte_to_the_wire() -> None:
    """Zero cost for batches without limits: the limit columns are empty, so nothing is serialized."""
    plain = _one_series_batch([1, 2])
    data = codec.encode(plain, compress=False)
    raw = pb.Batch.FromString(pb.Envelope.FromString(data).payload)
    assert len(raw.series.limit_warn_high) == 0 and len(raw.series.limit_crit_low) == 0
    s = plain.series[0]
    limited = Batch(1, 1, (SeriesPoints(s.key, s.timestamps_ms, s.values, limits=Limits(crit_high=1.0)),))
    with_limits = pb.Envelope.FromString(codec.encode(limited, compress=False)).payload
    # Four packed columns of one double each (tag, length, 8 bytes) are all that limits add.
    assert len(with_limits) - len(pb.Envelope.FromString(data).payload) == 4 * (1 + 1 + 8)


def test_limits_travel_per_series_with_nan_for_the_ones_a_device_did_not_give() -> None:
    ts = np.asarray([1, 2], np.int64)
    series = (
        SeriesPoints(SeriesKey.of("temp", {"sensor": "cpu"}), ts, np.ones(2), limits=Limits(crit_high=90.0)),
        SeriesPoints(SeriesKey.of("fan"), ts, np.ones(2)),
        SeriesPoints(SeriesKey.of("volt"), ts, np.ones(2), limits=Limits(10.5, 12.5, 3.1, 2.9)),
    )
    data = codec.encode(Batch(1, 1, series), compress=False)
    cols = pb.Batch.FromString(pb.Envelope.FromString(data).payload).series
    assert list(cols.limit_crit_high)[0::2] == [90.0, 12.5]
    assert np.isnan(cols.limit_crit_high[1]) and np.isnan(cols.limit_warn_high[0])
    _, batch = codec.decode(data)
    assert [s.limits for s in batch.series] == [
        Limits(crit_high=90.0),
        None,
        Limits(warn_high=10.5, crit_high=12.5, warn_low=3.1, crit_low=2.9),
    ]


def test_limit_columns_that_do_not_match_the_series_are_refused() -> None:
    ts = np.asarray([1], np.int64)
    series = (SeriesPoints(SeriesKey.of("a"), ts, np.ones(1), limits=Limits(crit_high=1.0)),)
    env = pb.Envelope.FromString(codec.encode(Batch(1, 1, series), compress=False))
    raw = pb.Batch.FromString(env.payload)
    raw.series.limit_warn_low.append(5.0)  # two entries for one series
    env.payload = raw.SerializeToString()
    env.uncompressed_size = len(env.payload)
    with pytest.raises(CodecError) as exc:
        codec.decode(env.SerializeToString())
    assert exc.value.reason == "column_length"


def test_a_heartbeat_travels_alone_in_a_heartbeat_batch() -> None:
    hb = Heartbeat(
        1_700_000_000_000,
        "1.2.3",
        10_000,
        4,
        8_192,
        1_800_000_000_000,
        (TargetState("bmc1", True, 250), TargetState("sw1", False, 2_000)),
    )
    data = codec.encode(Batch(9, 5, batch_class=BatchClass.HEARTBEAT, heartbeat=hb))
    header, batch = codec.decode(data)
    assert (header.batch_class, header.point_count) == (BatchClass.HEARTBEAT, 0)
    assert (batch.series, batch.events, batch.heartbeat) == ((), (), hb)
    # Even an all-default heartbeat is told apart from none.
    empty = Heartbeat(0, "", 0)
    assert codec.decode(codec.encode(Batch(9, 6, heartbeat=empty)))[1].heartbeat == empty


def _one_series_batch(ts: list[int]) -> Batch:
    n = len(ts)
    return Batch(1, 1, (SeriesPoints(SeriesKey.of("m"), np.asarray(ts, np.int64), np.ones(n)),))


def test_encode_refuses_non_monotonic_timestamps() -> None:
    with pytest.raises(CodecError) as exc:
        codec.encode(_one_series_batch([3, 2]))
    assert exc.value.reason == "non_monotonic"


def _envelope(**fields: object) -> bytes:
    good = pb.Envelope.FromString(codec.encode(_one_series_batch([1, 2])))
    for k, v in fields.items():
        setattr(good, k, v)
    return good.SerializeToString()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xff\xff", "malformed_envelope"),
        (_envelope(schema_version=99), "unknown_version"),
        (_envelope(uncompressed_size=2**31), "oversized"),
        (_envelope(payload=b"not zstd"), "bad_compression"),
        (_envelope(encoding=7), "unknown_encoding"),
        (_envelope(seq=5), "id_mismatch"),
    ],
)
def test_decode_rejects_bad_envelopes_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError) as exc:
        codec.decode(data)
    assert exc.value.reason == reason


def test_decode_rejects_non_monotonic_timestamps_from_a_hostile_sender() -> None:
    with pytest.raises(CodecError) as exc:
        codec.decode(raw_single_series_envelope([10, 5, -3]))
    assert exc.value.reason == "non_monotonic"


def test_push_request_bytes_are_a_valid_push_request() -> None:
    env = codec.encode(_one_series_batch([1, 2, 3]))
    assert codec.envelope_of_push_request(codec.push_request(env)) == env


def _big_batch(seq: int) -> Batch:
    """Large enough (about 200 kB raw) that zstd works long enough for threads to overlap."""
    rng = np.random.default_rng(seq)
    series = tuple(
        SeriesPoints(
            SeriesKey.of("m", {"device": f"d{seq}", "i": str(i)}),
            np.arange(1_700_000_000_000, 1_700_000_000_000 + 200 * 1000, 1000, dtype=np.int64),
            rng.normal(size=200),
            MetricKind.GAUGE,
        )
        for i in range(64)
    )
    return Batch(boot_epoch=1, seq=seq, batch_class=BatchClass.METRICS, series=series)


def test_encode_and_decode_are_safe_from_many_threads_at_once() -> None:
    """The hub decodes in up to max_inflight threads: one shared zstd context corrupted valid batches."""
    batches = [_big_batch(i) for i in range(48)]
    expected = [codec.encode(b) for b in batches]

    def round_trip(i: int) -> tuple[bytes, int, float]:
        data = codec.encode(batches[i])
        header, decoded = codec.decode(expected[i])
        return data, header.seq, float(sum(s.values.sum() for s in decoded.series))

    with ThreadPoolExecutor(max_workers=32) as pool:
        for _ in range(5):
            results = list(pool.map(round_trip, range(len(batches))))
            assert [r[0] for r in results] == expected
            assert [r[1] for r in results] == list(range(len(batches)))
            sums = [float(sum(s.values.sum() for s in b.series)) for b in batches]
            assert [r[2] for r in results] == pytest.approx(sums)
