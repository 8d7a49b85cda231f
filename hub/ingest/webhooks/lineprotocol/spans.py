"""Byte spans of one buffer (a payload's tokens), read a span at a time rather than a byte at a time.

The buffer is viewed as the 8-byte word starting at every one of its bytes (`words_view`, no copy),
so the first or last 8 bytes of 25,000 spans are one gather each.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shared.model import I64Array

U64Array = npt.NDArray[np.uint64]
PAD = 8  # bytes the buffer has before the text and after it, so every word stays inside
LOW = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)  # a word's first k bytes
HIGH = ~LOW[8 - np.arange(9)]  # a word's last k bytes


def padded(data: bytes, end: bytes = b"") -> npt.NDArray[np.uint8]:
    """`data` and `end` with `PAD` zero bytes either side, for `words_view` (one copy of `data`)."""
    buffer = np.zeros(PAD + len(data) + len(end) + PAD, dtype=np.uint8)
    buffer[PAD : PAD + len(data)] = np.frombuffer(data, dtype=np.uint8)
    buffer[PAD + len(data) : PAD + len(data) + len(end)] = np.frombuffer(end, dtype=np.uint8)
    return buffer


def words_view(buffer: npt.NDArray[np.uint8]) -> U64Array:
    """The little-endian uint64 starting at every byte of a `padded` buffer but its last `PAD - 1`
    (a view: nothing is copied). Its element `i` ends at text offset `i`: it holds the text's bytes
    `i - 8 .. i - 1`."""
    return np.ndarray((buffer.shape[0] - PAD + 1,), dtype="<u8", buffer=buffer, strides=(1,))


def first_word(words: U64Array, starts: I64Array, lengths: I64Array, j: int = 0) -> U64Array:
    """The `j`-th 8-byte word from the start of each span, its bytes past the span's end zeroed (all
    of them for a span that ends before it)."""
    if not j:
        return words[starts + PAD] & LOW[np.minimum(lengths, 8)]
    at = np.minimum(
        starts + PAD + 8 * j, words.shape[0] - 1
    )  # the last spans' words past the buffer read as 0
    return words[at] & LOW[np.minimum(np.maximum(lengths - 8 * j, 0), 8)]


def last_word(words: U64Array, ends: I64Array, lengths: I64Array, j: int = 0) -> U64Array:
    """The `j`-th 8-byte word from the end of each span, its bytes before the span's start zeroed."""
    return words[ends - 8 * j] & HIGH[np.minimum(np.maximum(lengths - 8 * j, 0), 8)]


def spans(starts: I64Array, lengths: I64Array) -> I64Array:
    """The indices of every element of the spans `[start, start + length)`, span after span."""
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(int(lengths.sum()))
