"""Turns monotonic counters into per-second rates: wrap-aware, reset-aware, no rate on the first sample."""

from __future__ import annotations

from shared.model import SeriesKey


def counter_delta(prev: int | float, value: int | float, bits: int) -> int | float | None:
    """The increase from `prev` to `value` of a `bits`-wide counter, or None for a discontinuity.

    A decrease is a wrap only when it is plausible: the previous reading sat in the top quarter of the
    counter's range and the new one in the bottom quarter (a 32-bit octet counter on a 10G link wraps
    every 3.4 s, so 32-bit wraps are common; a 64-bit wrap practically never happens). Any other decrease
    is a reset (device or counter restart) and yields no rate, so a reboot never shows as a spike.
    Integers stay integers so 64-bit counters keep every bit of precision.
    """
    if value >= prev:
        return value - prev
    span = 1 << bits
    if prev >= span * 3 // 4 and value < span // 4:
        return value + span - prev
    return None


class RateTracker:
    """Remembers each counter's previous reading (one tracker per target).

    `reset_all` forgets every counter: call it when sysUpTime went backwards (the device restarted), so
    the next reading of each counter is a first sample again.
    """

    def __init__(self) -> None:
        self._last: dict[SeriesKey, tuple[int, int | float]] = {}

    def update(self, key: SeriesKey, ts_ms: int, value: int | float, bits: int = 64) -> float | None:
        """Returns the per-second rate since the previous reading, or None when there is none yet."""
        prev = self._last.get(key)
        self._last[key] = (ts_ms, value)
        if prev is None or ts_ms <= prev[0]:
            return None
        delta = counter_delta(prev[1], value, bits)
        if delta is None:
            return None
        return float(delta) / ((ts_ms - prev[0]) / 1000.0)

    def reset_all(self) -> None:
        self._last.clear()

    def __len__(self) -> int:
        return len(self._last)
