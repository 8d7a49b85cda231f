"""Turns monotonic counters into per-second rates: wrap-aware, reset-aware, no rate on the first sample."""

from __future__ import annotations

from shared.model import SeriesKey


class RateTracker:
    """Remembers each counter's previous reading.

    A decrease is a wrap when the counter is 32-bit and the wrapped delta is plausible; otherwise
    (64-bit, or an implausible wrap) it is a reset and yields no rate, so a device reboot never shows
    as a spike. `reset_all` forgets every counter (sysUpTime went backwards: the device restarted).
    """

    def __init__(self) -> None:
        self._last: dict[SeriesKey, tuple[int, float]] = {}

    def update(self, key: SeriesKey, ts_ms: int, value: float, bits: int = 64) -> float | None:
        """Returns the per-second rate since the previous reading, or None when there is none yet."""
        prev = self._last.get(key)
        self._last[key] = (ts_ms, value)
        if prev is None or ts_ms <= prev[0]:
            return None
        dt = (ts_ms - prev[0]) / 1000.0
        delta = value - prev[1]
        if delta < 0:
            if bits == 32 and prev[1] > 2**31:
                delta += 2**32
            else:
                return None
        return delta / dt

    def forget(self, key: SeriesKey) -> None:
        self._last.pop(key, None)

    def reset_all(self) -> None:
        self._last.clear()
