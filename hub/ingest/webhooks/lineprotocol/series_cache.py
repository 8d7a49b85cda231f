"""Series numbered across payloads, so a payload finds the series of its fields with array lookups.

Telegraf pushes the same series every interval. A (series prefix, field name) pair is given a code
(the prefix's and the name's numbers, both handed out once and never reused) and each distinct series
key a number; a payload looks up its distinct pairs' codes in one sorted array instead of building
and hashing a key per pair (7,500 pairs a payload cost about 4 ms that way).

Many threads parse at once. What a payload reads is one published `Numbering`, never changed after;
new pairs are added under a lock into a new one. Past `limit` codes the numbering starts over (a new
generation): a payload that meets that while adding its pairs takes every number from the new one,
so the numbers of one payload always come from one generation and one key has one number there.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shared.model import I64Array, SeriesKey

Pair = tuple[str, tuple[tuple[str, str], ...]]  # (metric, labels): a key's identity, hashed in C
MAX_NAMES_CACHED = 100_000  # past this the field names are numbered afresh (old codes only go stale)
_NAME_BITS = 32
_numbers = itertools.count()  # next() is atomic: a number is handed out once
_name_ids: dict[bytes, int] = {}


def new_id() -> int:
    """A number for a new series prefix, never handed out before."""
    return next(_numbers)


def name_ids(names: list[bytes]) -> I64Array:
    """A number for each field name, the same in every payload while it is cached."""
    got = list(map(_name_ids.get, names))
    for i, name_id in enumerate(got):
        if name_id is None:
            if len(_name_ids) >= MAX_NAMES_CACHED:
                _name_ids.clear()
            got[i] = _name_ids[names[i]] = next(_numbers)
    return np.asarray(got, dtype=np.int64)


def codes(prefix_ids: I64Array, field_name_ids: I64Array) -> I64Array:
    """The code of each (prefix, field name) pair: both numbers in one int64 (the counter stays far
    below 2**31)."""
    return (prefix_ids << _NAME_BITS) | field_name_ids


@dataclass(frozen=True, slots=True)
class Numbering:
    """One published state of a generation: the codes seen (sorted) with their series numbers, and
    the key of each number. `keys` and `ids` are the generation's, appended to under the lock only,
    past every number an earlier state holds."""

    codes: I64Array
    numbers: I64Array
    keys: list[SeriesKey]
    ids: dict[Pair, int]

    @classmethod
    def empty(cls) -> Numbering:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, [], {})

    def find(self, codes: I64Array) -> tuple[I64Array, I64Array]:
        """The number of each code and the indices of the codes without one."""
        if not self.codes.shape[0]:
            return np.full(codes.shape[0], -1, dtype=np.int64), np.arange(codes.shape[0])
        at = np.minimum(np.searchsorted(self.codes, codes), self.codes.shape[0] - 1)
        hit = self.codes[at] == codes
        return np.where(hit, self.numbers[at], -1), np.flatnonzero(~hit)


class SeriesCache:
    """The series numbering shared by every payload of a process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._now = Numbering.empty()
        self._lock = threading.Lock()

    def numbers(
        self, codes: I64Array, keys_of: Callable[[I64Array], list[SeriesKey]]
    ) -> tuple[I64Array, list[SeriesKey]]:
        """The series number of each of the distinct `codes`, and the keys the numbers index.

        `keys_of(indices)` gives the series keys of the codes at `indices` (those seen for the first
        time); it is called under the lock, so it must not parse in turn.
        """
        now = self._now
        found, missing = now.find(codes)
        if not missing.shape[0]:
            return found, now.keys
        with self._lock:
            now = self._now
            found, missing = now.find(codes)  # another payload may have added them, or started over
            if not missing.shape[0]:
                return found, now.keys
            if now.codes.shape[0] + missing.shape[0] > self.limit:  # codes: a key may have stale ones
                now, found, missing = Numbering.empty(), np.full_like(codes, -1), np.arange(codes.shape[0])
            keys, ids = now.keys, now.ids
            for i, key in zip(missing.tolist(), keys_of(missing), strict=True):
                pair = (key.metric, key.labels)
                number = ids.get(pair)
                if number is None:
                    number = ids[pair] = len(keys)
                    keys.append(key)
                found[i] = number
            new = missing[np.argsort(codes[missing])]  # merged in, not all sorted again
            at = np.searchsorted(now.codes, codes[new])
            self._now = Numbering(
                np.insert(now.codes, at, codes[new]), np.insert(now.numbers, at, found[new]), keys, ids
            )
            return found, keys
