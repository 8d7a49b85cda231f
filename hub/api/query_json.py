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

    The column texts are `[t0,t1,...]` and `[v0,v1,...]`; each token is copied in one scatter to its
    place in the output, and the comma after token k lands exactly where pair k needs one (inside it
    for a timestamp; for a value, where its closing bracket is then written).
    """
    n = ts.shape[0]
    if n == 0:
        return b"", np.zeros(1, np.int64)
    t_text, v_text = _column_text(ts, np.int64), _column_text(values, np.float64)
    t_start, t_len = _tokens(t_text, n)
    v_start, v_len = _tokens(v_text, n)
    pair_starts = np.concatenate(([0], np.cumsum(t_len + v_len + 4)))  # "[", ",", "]" and a comma
    starts = pair_starts[:-1]
    out = np.full(int(pair_starts[-1]), _COMMA, np.uint8)
    out[starts] = _OPEN
    _scatter(out, t_text, t_start, starts + 1 - t_start)
    _scatter(out, v_text, v_start, starts + t_len + 2 - v_start)
    out[pair_starts[1:] - 2] = _CLOSE
    return out.tobytes(), pair_starts


def _column_text(column: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    """The column's JSON text as bytes, without the enclosing brackets."""
    text = orjson.dumps(np.ascontiguousarray(column, dtype), option=_NUMPY)
    return np.frombuffer(text, np.uint8)[1:-1]


def _tokens(text: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of each of the `n` comma-separated tokens of `text` (numbers: no commas inside)."""
    commas = np.flatnonzero(text == _COMMA)
    start = np.concatenate(([0], commas + 1))
    length = np.concatenate((commas, [text.shape[0]])) - start
    if start.shape[0] != n:
        raise ValueError(f"expected {n} numbers, the encoder wrote {start.shape[0]}")
    return start, length


def _scatter(out: np.ndarray, text: np.ndarray, start: np.ndarray, shift: np.ndarray) -> None:
    """Copies every byte of `text` to its index plus its token's `shift` (a token's trailing comma too).

    The destinations are one running sum: +1 per byte, plus the change of shift where a token starts.
    """
    step = np.ones(text.shape[0], np.int64)
    step[0] = shift[0]
    step[start[1:]] += np.diff(shift)
    out[np.cumsum(step)] = text
