"""Numbering the distinct byte strings among many spans of one buffer, without a bytes object per span.

A payload's 25,000 field names are usually a dozen distinct ones, and its 5,000 series prefixes a
few thousand. Each span is read as the 8-byte words it covers (one gather per word from an
overlapping view of the buffer, see `spans`), the words are hashed into one uint64, and each span is
checked to be equal word for word to the first span of its hash, so a hash collision can never merge
two strings: the caller is told to compare the bytes instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub.ingest.webhooks.lineprotocol.spans import U64Array, first_word
from shared.model import I64Array

MAX_WORDS = 32  # spans longer than 256 bytes are the caller's to compare
_BUCKET_BITS = 12  # a first, sort-free pass: a few dozen distinct strings rarely share a bucket of 4096
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplying by it loses nothing


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
    if int(lengths.max()) > 8 * MAX_WORDS:
        return None
    rows = [first_word(words, starts, lengths, j) for j in range(-(-int(lengths.max()) // 8))]
    hashed = lengths.astype(np.uint64)
    for row in rows:
        hashed ^= row
        hashed *= _MIX
    hashed ^= hashed >> np.uint64(29)
    found = _by_bucket(hashed, n) or _by_sort(hashed)
    rep = found.first[found.number]
    same = lengths == lengths[rep]
    for row in rows:
        same &= row == row[rep]
    if not same.all():
        return None
    return found


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
