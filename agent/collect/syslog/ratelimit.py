"""Per-sender token buckets: one chatty device must not crowd the others out of the queue and the spool.

A bucket refills at `rate` messages per second up to `burst`; a message finding it empty is dropped (the
caller counts it). Buckets live in an LRU of `max_sources`: the least recently heard sender is forgotten
past that and starts again with a full bucket, so a spoofed-address flood cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    limited: bool = False  # dropping this sender's messages now (for the log-once rule)


class RateLimiter:
    """Not thread-safe: called from the receiver's event loop only."""

    def __init__(self, rate: float, burst: int, max_sources: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, source: str, now: float) -> tuple[bool, bool]:
        """Takes one token for `source` at monotonic time `now`.

        Returns:
            (allowed, changed): whether the message may pass, and whether the sender just went over its
            limit or came back under it (the moment to log).
        """
        b = self._buckets.get(source)
        if b is None:
            b = self._buckets[source] = _Bucket(self._burst, now)
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
            b.tokens = min(self._burst, b.tokens + (now - b.at) * self._rate)
            b.at = now
        allowed = b.tokens >= 1.0
        if allowed:
            b.tokens -= 1.0
        changed = b.limited == allowed
        b.limited = not allowed
        return allowed, changed
