"""The embedded store's read path: many series aggregated at once, decoded chunks cached by their bytes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.store.base import Agg, RangeQuery, aggregate_series
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded import chunk
from hub.store.embedded.chunk_cache import DecodedChunks
from hub.store.embedded.store import EmbeddedStore
from shared.model import Batch, SeriesKey, SeriesPoints

pytestmark = pytest.mark.unit

T0 = 1_789_999_200_000


_FOLDS = {
    Agg.AVG: lambda v: float(v.sum() / v.shape[0]),
    Agg.SUM: lambda v: float(v.sum()),
    Agg.MIN: lambda v: float(v.min()),
    Agg.MAX: lambda v: float(v.max()),
    Agg.COUNT: lambda v: float(v.shape[0]),
    Agg.LAST: lambda v: float(v[-1]),
}


def _aggregate_one(ts: np.ndarray, vals: np.ndarray, step: int, agg: Agg) -> tuple[list[int], list[float]]:
    """The plain definition, one bucket at a time."""
    buckets = sorted({t // step * step for t in ts.tolist()})
    return buckets, [_FOLDS[agg](vals[(ts // step * step) == b]) for b in buckets]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 10_000), max_size=30, unique=True).map(sorted), max_size=6),
    st.integers(1, 4000),
    st.sampled_from(list(Agg)),
)
def test_series_aggregated_together_get_the_buckets_each_gets_alone(
    times: list[list[int]], step: int, agg: Agg
) -> None:
    parts = [
        (np.asarray(t, np.int64), np.arange(len(t), dtype=np.float64) * 1.5 - i) for i, t in enumerate(times)
    ]
    offsets = np.concatenate(([0], np.cumsum([len(t) for t in times], dtype=np.int64)))
    ts, vals, edges = aggregate_series(
        np.concatenate([np.zeros(0, np.int64), *(p[0] for p in parts)]),
        np.concatenate([np.zeros(0), *(p[1] for p in parts)]),
        offsets,
        step,
        agg,
    )
    assert edges.shape == offsets.shape
    for i, (t, v) in enumerate(parts):
        want_ts, want = _aggregate_one(t, v, step, agg)
        lo, hi = int(edges[i]), int(edges[i + 1])
        assert ts[lo:hi].tolist() == want_ts
        np.testing.assert_allclose(vals[lo:hi], want, rtol=1e-12)


def _encoded(n: int, cctx: zstandard.ZstdCompressor, base: float = 0.0) -> bytes:
    return chunk.encode(np.arange(n, dtype=np.int64) * 10_000, [np.arange(n, dtype=np.float64) + base], cctx)


def test_decoded_chunks_are_shared_read_only_and_bounded_by_bytes() -> None:
    cctx, dctx = zstandard.ZstdCompressor(), zstandard.ZstdDecompressor()
    one, other = _encoded(720, cctx), _encoded(720, cctx, base=0.5)
    cache = DecodedChunks(max_bytes=20_000)  # one decoded raw block (720 × 16 B + its bytes), not two
    first = cache.decode(one, dctx)
    again = cache.decode(bytes(one), dctx)  # equal bytes, another object: a hit
    assert again[0] is first[0]
    assert not first[0].flags.writeable and not first[1][0].flags.writeable
    assert cache.decode(other, dctx)[1][0][0] == 0.5
    assert cache.decode(one, dctx)[0] is not first[0]  # evicted by `other`, decoded again
    with pytest.raises(chunk.ChunkError):
        cache.decode(b"not a chunk", dctx)


def test_a_block_rewritten_by_a_flush_is_read_with_its_new_points(tmp_path: Path) -> None:
    """The cache is keyed by a chunk's bytes, so a merged block never answers from its old decode."""
    store = EmbeddedStore(tmp_path, EmbeddedStoreConfig())
    store.open()
    key = SeriesKey.of("temp")
    q = RangeQuery("temp", T0, T0 + 3_600_000)
    try:
        ts = T0 + np.arange(10, dtype=np.int64) * 10_000
        store.write("site/a", Batch(1, 1, (SeriesPoints(key, ts, np.ones(10)),)))
        store.flush()
        assert store.query(q)[0].values.tolist() == [1.0] * 10
        store.write("site/a", Batch(1, 2, (SeriesPoints(key, ts[5:] + 5_000, np.full(5, 2.0)),)))
        store.flush()
        (answer,) = store.query(q)
        assert answer.values.tolist() == [1.0] * 6 + [2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0]
        assert answer.timestamps_ms.tolist() == sorted([*ts.tolist(), *(ts[5:] + 5_000).tolist()])
    finally:
        store.close()


def test_queries_from_many_threads_at_once_share_decoded_chunks_and_agree(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, EmbeddedStoreConfig())
    store.open()
    ts = T0 + np.arange(2160, dtype=np.int64) * 10_000
    series = tuple(
        SeriesPoints(SeriesKey.of("heavy", {"port": str(i)}), ts, np.sin(ts / 5e5) + i) for i in range(20)
    )
    q = RangeQuery("heavy", T0, T0 + 6 * 3_600_000, max_points=400)
    try:
        store.write("site/a", Batch(1, 1, series))
        store.flush()
        want = [(r.key, r.timestamps_ms.tolist(), r.values.tolist()) for r in store.query(q)]

        def answers(_: int) -> list[list[tuple[SeriesKey, list[int], list[float]]]]:
            return [
                [(r.key, r.timestamps_ms.tolist(), r.values.tolist()) for r in store.query(q)]
                for _ in range(10)
            ]

        with ThreadPoolExecutor(8) as pool:
            got = [a for batch in pool.map(answers, range(8)) for a in batch]
    finally:
        store.close()
    assert len(want) == 20 and all(a == want for a in got)
