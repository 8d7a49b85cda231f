"""Numbering the distinct byte strings among many spans of one buffer, without a bytes object per span.

A payload's 25,000 field names are usually a dozen distinct ones. Each span is read as the 8-byte words
it covers (one gather per word from an overlapping view of the buffer), the words are hashed into one
uint64, and spans whose hashes meet are checked to be equal word for word, so a hash collision can
never merge two strings: the caller is told to cut the bytes instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub.ingest.webhooks.spans import U64Array, first_word
from shared.model import I64Array

MAX_WORDS = 8  # spans longer than 64 bytes are the caller's to cut
_BUCKET_BITS = 12  # a first, sort-free pass: a few dozen distinct strings rarely share a bucket of 4096
# Odd multipliers (splitmix64's), one per word of a span and one for its length.
_MIX = np.array(
    [0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93]
    + [0xA0761D6478BD642F, 0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3, 0x589965CC75374CC3, 0x1D8E4E27C47D124F],
    dtype=np.uint64,
)


@dataclass(frozen=True, slots=True)
class Distinct:
    """The distinct strings of the spans: for each the index of a span that spells it (`first`),
    and for each span the number of its string (`number`, into `first`)."""

    first: I64Array
    number: I64Array


def distinct(words: U64Array, starts: I64Array, lengths: I64Array) -> Distinct | None:
    """The distinct strings among the spans `[start, start + length)` of the text `words` views.

    Returns:
        None when a span is longer than `MAX_WORDS` words or two distinct strings hash alike (the
        caller then compares the bytes themselves).
    """
    n = starts.shape[0]
    if not n:
        return Distinct(np.zeros(0, np.int64), np.zeros(0, np.int64))
    width = -(-int(lengths.max()) // 8)
    if width > MAX_WORDS:
        return None
    rows = [first_word(words, starts, lengths, j) for j in range(width)]
    hashed = lengths.astype(np.uint64) * _MIX[-1]
    for j, row in enumerate(rows):
        hashed ^= row * _MIX[j]
    hashed ^= hashed >> np.uint64(31)
    found = _by_bucket(hashed, n) or _by_sort(hashed)
    rep = found.first[found.number]
    same = lengths == lengths[rep]
    for row in rows:
        same &= row == row[rep]
    return found if same.all() else None


def _by_bucket(hashed: U64Array, n: int) -> Distinct | None:
    """Strings numbered by the top bits of their hash (no sort); None when two hashes share them."""
    bucket = (hashed >> np.uint64(64 - _BUCKET_BITS)).astype(np.int64)
    first_in = np.full(1 << _BUCKET_BITS, -1, dtype=np.int64)
    first_in[bucket[::-1]] = np.arange(n - 1, -1, -1)  # the last write of a bucket is its first span
    used = np.flatnonzero(first_in >= 0)
    if (hashed != hashed[first_in[bucket]]).any():
        return None
    number_of = np.zeros(1 << _BUCKET_BITS, dtype=np.int64)
    number_of[used] = np.arange(used.shape[0])
    return Distinct(first_in[used], number_of[bucket])


def _by_sort(hashed: U64Array) -> Distinct:
    _, first, number = np.unique(hashed, return_index=True, return_inverse=True)
    return Distinct(first.astype(np.int64), number.astype(np.int64).ravel())


def small_ints(values: I64Array, bound: int) -> tuple[I64Array, I64Array]:
    """The distinct `values` (all in `[0, bound)`), ascending, and the index of each value among them
    (`np.unique`'s inverse): by marking when `bound` is within a few times their number, else sorted."""
    if bound > 4 * values.shape[0] + 1024:
        found, inverse = np.unique(values, return_inverse=True)
        return found, inverse.ravel()
    seen = np.zeros(bound, dtype=np.bool_)
    seen[values] = True
    return np.flatnonzero(seen), (np.cumsum(seen) - 1)[values]
