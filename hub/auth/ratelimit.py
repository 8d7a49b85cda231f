"""Token buckets keyed by principal or client IP: `rate` tokens a second, up to `burst` saved.

One limiter per route group and key kind. Buckets live in this process (each API replica limits on its
own), in an LRU bounded by `max_keys`: a flood of new IPs evicts the oldest buckets, which then start
full again; that costs at most one burst per evicted key and the memory stays bounded.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 50_000


class RateLimiter:
    """Thread-safe; `monotonic` is the clock (seconds)."""

    def __init__(
        self, rate: float, burst: float, monotonic: Callable[[], float], max_keys: int = MAX_KEYS
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._now = monotonic
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Takes `cost` tokens from `key`'s bucket. Returns 0 when allowed, else the seconds until it
        would be (what `Retry-After` says); a refused request takes nothing."""
        now = self._now()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= cost else (cost - tokens) / self.rate
            self._buckets[key] = (tokens - cost if wait == 0.0 else tokens, now)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return wait


def retry_after(wait_s: float) -> str:
    """`Retry-After` in whole seconds, rounded up (never 0 for a refused request)."""
    return str(max(1, math.ceil(wait_s)))
