"""The chunk codec: bit-exact round trips and the density the store's bytes/point goal relies on."""

from __future__ import annotations

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hub.store.embedded import chunk

pytestmark = pytest.mark.unit

CCTX = zstandard.ZstdCompressor(level=chunk.ZSTD_LEVEL)
DCTX = zstandard.ZstdDecompressor()


def round_trip(ts: np.ndarray, *cols: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    return chunk.decode(chunk.encode(ts, list(cols), CCTX), DCTX)


@settings(max_examples=200, deadline=None)
@given(
    gaps=hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(1, 10**9)),
    data=st.data(),
)
def test_any_timestamps_and_floats_round_trip_bit_exactly(gaps: np.ndarray, data: st.DataObject) -> None:
    ts = 1_700_000_000_000 + np.cumsum(gaps)
    vals = data.draw(
        hnp.arrays(np.float64, ts.shape[0], elements=st.floats(allow_nan=True, allow_infinity=True))
    )
    got_ts, (got,) = round_trip(ts, vals)
    assert got_ts.tolist() == ts.tolist()
    assert got.view(np.uint64).tolist() == vals.view(np.uint64).tolist()


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_tiny_chunks_round_trip(n: int) -> None:
    ts = np.arange(n, dtype=np.int64) * 10_000
    got_ts, (a, b) = round_trip(ts, np.arange(n) * 0.1, np.full(n, -0.0))
    assert got_ts.tolist() == ts.tolist()
    assert a.tolist() == (np.arange(n) * 0.1).tolist() and np.signbit(b).all()


def test_a_quantized_random_walk_at_10s_takes_under_one_byte_per_point() -> None:
    rng = np.random.default_rng(1)
    ts = 1_700_000_000_000 + np.arange(720, dtype=np.int64) * 10_000
    vals = np.round(40 + np.cumsum(rng.normal(0, 0.3, 720)), 1)
    assert len(chunk.encode(ts, [vals], CCTX)) < 720


def test_corrupt_bytes_raise_chunk_error() -> None:
    data = chunk.encode(np.arange(10, dtype=np.int64), [np.ones(10)], CCTX)
    with pytest.raises(chunk.ChunkError):
        chunk.decode(data[:-3], DCTX)
    with pytest.raises(chunk.ChunkError):
        chunk.decode(b"not a chunk", DCTX)
