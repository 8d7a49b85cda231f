"""The wire codec: any batch round-trips exactly; malformed input is refused with a reason."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import codec
from shared.errors import CodecError
from shared.model import Batch, BatchClass, Event, MetricKind, SeriesKey, SeriesPoints, Severity
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
    )


def assert_same(a: Batch, b: Batch) -> None:
    assert (a.boot_epoch, a.seq, a.batch_class, a.events) == (b.boot_epoch, b.seq, b.batch_class, b.events)
    assert len(a.series) == len(b.series)
    for x, y in zip(a.series, b.series, strict=True):
        assert (x.key, x.kind, x.unit) == (y.key, y.kind, y.unit)
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
