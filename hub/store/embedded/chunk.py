"""Chunk codec: one series' points in one time block as compact bytes.

Why this layout: metrics polled on a fixed interval have near-constant timestamp deltas and values that
move in small quantized steps. So timestamps are stored as delta-of-delta, and a value column is either
decimal-scaled integers (the value times 10^k is integral, as for a sensor reading of 23.4) stored as
deltas, or, for arbitrary floats, the XOR of consecutive IEEE-754 bit patterns (Gorilla's idea). Each
integer stream is zigzag-encoded, narrowed to the smallest width and byte-shuffled so zstd sees long
runs of zero bytes. Everything is vectorized: no per-point Python work.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import zstandard

from shared.model import F64Array, I64Array

FORMAT_VERSION = 1
ZSTD_LEVEL = 3
# Largest decimal scale (10^k) a value column is stored at as integers; beyond it, XOR encoding.
MAX_DECIMALS = 6
_MAX_EXACT_INT = float(2**52)

_MODE_DECIMAL = 1
_MODE_XOR = 2

_HEAD = struct.Struct("<BIBqq")  # version, n, columns, t0, first delta
_REGULAR = struct.Struct("<?")  # every interval equal: no delta-of-delta stream follows
_COL = struct.Struct("<BBq")  # mode, decimals, first value (int or raw bits)
_STREAM = struct.Struct("<BI")  # width in bytes, byte length

U64Array = npt.NDArray[np.uint64]


class ChunkError(ValueError):
    """Raised when chunk bytes are truncated, of an unknown version or inconsistent (a corrupt row)."""


def encode(ts: I64Array, columns: Sequence[F64Array], cctx: zstandard.ZstdCompressor) -> bytes:
    """Encodes sorted timestamps and equally long float columns into one compressed chunk.

    Args:
        ts: strictly increasing timestamps (ms).
        columns: value columns, each as long as `ts`.
        cctx: a zstd compressor owned by the calling thread (compressors are not thread-safe).
    """
    n = int(ts.shape[0])
    t0 = int(ts[0]) if n else 0
    d0 = int(ts[1] - ts[0]) if n > 1 else 0
    deltas = ts[1:] - ts[:-1]
    dod = deltas[1:] - deltas[:-1]
    regular = not dod.any()
    parts = [_HEAD.pack(FORMAT_VERSION, n, len(columns), t0, d0), _REGULAR.pack(regular)]
    if not regular:
        parts.append(_pack_ints(dod))
    for col in columns:
        parts.extend(_encode_floats(col))
    return cctx.compress(b"".join(parts))


def decode(data: bytes, dctx: zstandard.ZstdDecompressor) -> tuple[I64Array, list[F64Array]]:
    """Decodes a chunk back into timestamps and value columns, bit-exact.

    Raises:
        ChunkError: when the bytes are not a valid chunk.
    """
    try:
        raw = dctx.decompress(data)
        version, n, ncols, t0, d0 = _HEAD.unpack_from(raw, 0)
        if version != FORMAT_VERSION:
            raise ChunkError(f"unknown chunk version {version}")
        pos = _HEAD.size
        (regular,) = _REGULAR.unpack_from(raw, pos)
        pos += _REGULAR.size
        if regular:
            ts = t0 + np.arange(n, dtype=np.int64) * d0
        else:
            dod, pos = _unpack_ints(raw, pos)
            ts = _timestamps(n, t0, d0, dod)
        cols: list[F64Array] = []
        for _ in range(ncols):
            col, pos = _decode_floats(raw, pos, n)
            cols.append(col)
    except (zstandard.ZstdError, struct.error, ValueError) as exc:
        raise ChunkError(str(exc)) from exc
    return ts, cols


def _timestamps(n: int, t0: int, d0: int, dod: I64Array) -> I64Array:
    if n == 0:
        return np.zeros(0, np.int64)
    deltas = np.empty(n - 1, np.int64)
    if n > 1:
        deltas[0] = d0
        deltas[1:] = d0 + np.cumsum(dod)
    return np.concatenate(([np.int64(t0)], t0 + np.cumsum(deltas))).astype(np.int64)


def _decimal_ints(vals: F64Array) -> tuple[int, I64Array] | None:
    """The smallest k such that every value is exactly an integer over 10^k, with those integers.

    k is guessed from the shortest round-trip text of a few values (`repr(23.4)` has one decimal),
    then checked on the whole column in one vectorized pass; a wider sample gets one more try.
    """
    tried = -1
    for sample in (vals[:4], vals[:: max(1, vals.shape[0] // 16)]):
        k = max(_repr_decimals(v) for v in sample.tolist())
        if k > MAX_DECIMALS:
            return None
        if k > tried:
            ints = _exact_ints(vals, 10.0**k)
            if ints is not None:
                return k, ints
            tried = k
    return None


def _repr_decimals(v: float) -> int:
    text = repr(v)
    mantissa, _, exponent = text.partition("e")
    decimals = len(mantissa.partition(".")[2].rstrip("0"))
    if exponent:
        decimals -= int(exponent)
    return max(0, decimals) if v == v and abs(v) != float("inf") else MAX_DECIMALS + 1


def _exact_ints(vals: F64Array, scale: float) -> I64Array | None:
    # Checked before multiplying, so nothing can overflow (and NaN fails the comparison).
    if not float(np.abs(vals).max(initial=0.0)) * scale < _MAX_EXACT_INT:
        return None
    ints = np.rint(vals * scale).astype(np.int64)
    # Compared as bytes, after the int conversion, so -0.0 (which becomes 0) is not taken for 0.0.
    if (ints / scale).tobytes() != vals.tobytes():
        return None
    return ints


def _encode_floats(vals: F64Array) -> list[bytes]:
    if vals.shape[0] == 0:
        return [_COL.pack(_MODE_XOR, 0, 0), _pack_ints(np.zeros(0, np.int64))]
    scaled = _decimal_ints(vals)
    if scaled is not None:
        k, ints = scaled
        return [_COL.pack(_MODE_DECIMAL, k, int(ints[0])), _pack_ints(ints[1:] - ints[:-1])]
    bits = vals.view(np.uint64)
    xored = bits[1:] ^ bits[:-1]
    return [_COL.pack(_MODE_XOR, 0, int(bits[0].view(np.int64))), _pack_uints(xored)]


def _decode_floats(raw: bytes, pos: int, n: int) -> tuple[F64Array, int]:
    mode, k, first = _COL.unpack_from(raw, pos)
    pos += _COL.size
    if mode == _MODE_DECIMAL:
        deltas, pos = _unpack_ints(raw, pos)
        ints = np.concatenate(([np.int64(first)], first + np.cumsum(deltas))) if n else deltas
        return (ints[:n] / 10.0**k).astype(np.float64), pos
    if mode != _MODE_XOR:
        raise ChunkError(f"unknown column mode {mode}")
    xored, pos = _unpack_uints(raw, pos)
    if n == 0:
        return np.zeros(0, np.float64), pos
    bits = np.empty(n, np.uint64)
    bits[0] = np.int64(first).view(np.uint64)
    bits[1:] = xored
    return np.bitwise_xor.accumulate(bits).view(np.float64), pos


def _pack_ints(vals: I64Array) -> bytes:
    """Zigzag-encodes signed ints so small magnitudes of either sign become small unsigned ints."""
    v = vals.astype(np.int64)
    return _pack_uints(((v << 1) ^ (v >> 63)).view(np.uint64))


def _unpack_ints(raw: bytes, pos: int) -> tuple[I64Array, int]:
    u, pos = _unpack_uints(raw, pos)
    return ((u >> np.uint64(1)).view(np.int64) ^ -(u & np.uint64(1)).view(np.int64)), pos


def _pack_uints(u: U64Array) -> bytes:
    """Narrows to 1, 2, 4 or 8 bytes per value and byte-shuffles (all low bytes, then the next...)."""
    top = int(u.max()) if u.shape[0] else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    narrow = u.astype(f"<u{width}")
    body = narrow.view(np.uint8).reshape(-1, width).T.tobytes()
    return _STREAM.pack(width, len(body)) + body


def _unpack_uints(raw: bytes, pos: int) -> tuple[U64Array, int]:
    width, size = _STREAM.unpack_from(raw, pos)
    pos += _STREAM.size
    if width not in (1, 2, 4, 8) or size % width or pos + size > len(raw):
        raise ChunkError("corrupt integer stream")
    planes = np.frombuffer(raw, np.uint8, size, pos).reshape(width, -1)
    narrow = np.ascontiguousarray(planes.T).view(f"<u{width}").reshape(-1)
    return narrow.astype(np.uint64), pos + size
