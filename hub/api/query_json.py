"""The `/api/v1/query` answer as JSON bytes, written straight from the result's numpy columns.

Why not a JSON library over Python objects: a dashboard's answer is ~50k points (119 series × 400),
and a float or int object per point, encoded one by one, was most of a query's CPU time, all of it
under the interpreter lock that gRPC intake needs too. Here orjson writes each column of the whole
answer in one call from the array's memory (ints as digits, floats as their shortest round-trip text,
NaN and ±inf as null, since JSON has no such numbers), and numpy interleaves the two texts into
`[[t,v],...]` with a few array passes over the bytes: no object per point at any step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import orjson

from hub.store.base import SeriesResult

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_COMMA, _OPEN, _CLOSE = ord(","), ord("["), ord("]")


def query_answer(start_ms: int, end_ms: int, results: Sequence[SeriesResult]) -> bytes:
    """`{"start_ms":..,"end_ms":..,"series":[{"metric":..,"labels":{..},"points":[[t,v],..]},..]}`.

    Compact (no spaces), keys in that order, labels in the key's order, non-ASCII text as UTF-8.
    """
    counts = np.fromiter((r.timestamps_ms.shape[0] for r in results), np.int64, len(results))
    text, pair_starts = _pairs_text(
        np.concatenate([np.zeros(0, np.int64), *(r.timestamps_ms for r in results)]),
        np.concatenate([np.zeros(0, np.float64), *(r.values for r in results)]),
    )
    edges = pair_starts[np.concatenate(([0], np.cumsum(counts)))].tolist()
    parts = []
    for r, lo, hi in zip(results, edges[:-1], edges[1:], strict=True):
        meta = orjson.dumps({"metric": r.key.metric, "labels": dict(r.key.labels)})
        # hi - 1: without the comma that follows every pair.
        parts.append(meta[:-1] + b',"points":[' + text[lo : max(lo, hi - 1)] + b"]}")
    return b'{"start_ms":%d,"end_ms":%d,"series":[%s]}' % (start_ms, end_ms, b",".join(parts))


def _pairs_text(ts: np.ndarray, values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """`[t0,v0],[t1,v1],...,` (every pair followed by a comma) and where pair k starts (then the end).

    Each pair is laid out as "[", the timestamp and a comma, the value and a comma (which becomes the
    "]"), and a comma. Every byte's part in that layout is one `repeat`, so each column's text, commas
    and all, is copied to its places in one masked assignment, in order: no index per byte.
    """
    n = ts.shape[0]
    if n == 0:
        return b"", np.zeros(1, np.int64)
    t_text, v_text = _column_text(ts, np.int64), _column_text(values, np.float64)
    sizes = np.ones((n, 4), np.int64)
    sizes[:, 1], sizes[:, 2] = _token_sizes(t_text, n), _token_sizes(v_text, n)
    pair_starts = np.concatenate(([0], np.cumsum(sizes.sum(axis=1))))
    part = np.repeat(np.tile(np.arange(4, dtype=np.uint8), n), sizes.reshape(-1))
    out = np.full(part.shape[0], _COMMA, np.uint8)
    out[part == 1] = t_text
    out[part == 2] = v_text
    out[pair_starts[:-1]] = _OPEN
    out[pair_starts[1:] - 2] = _CLOSE
    return out.tobytes(), pair_starts


def _column_text(column: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """The column's JSON text without its brackets, every number followed by a comma (the last too)."""
    text = orjson.dumps(np.ascontiguousarray(column, dtype), option=_NUMPY)
    out = np.frombuffer(text, np.uint8, offset=1).copy()
    out[-1] = _COMMA
    return out


def _token_sizes(text: np.ndarray, n: int) -> np.ndarray:
    """Bytes of each of the `n` numbers in `text`, each with its comma (numbers hold no commas)."""
    commas = np.flatnonzero(text == _COMMA)
    if commas.shape[0] != n:
        raise ValueError(f"expected {n} numbers, the encoder wrote {commas.shape[0]}")
    return np.diff(commas, prepend=-1)
