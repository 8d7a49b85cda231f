"""Token buckets keyed by principal or client IP: `rate` tokens a second, up to `burst` saved.

One limiter per route group and key kind. `RateLimiter` keeps its buckets in this process (each API
replica limits on its own: the per-request limits, where a database write per request would cost more
than the limit saves), in an LRU bounded by `max_keys`: a flood of new IPs evicts the oldest buckets,
which then start full again; that costs at most one burst per evicted key and the memory stays bounded.
`SharedRateLimiter` keeps them in the hub's state database, one budget for every hub process on it:
the login limits, which must hold however a password guesser spreads its tries over replicas.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.auth.models import rate_buckets

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


class SharedRateLimiter:
    """The buckets of one limit in the state database; `now_ms` is wall-clock time (every process must
    read the same clock). Thread-safe (one transaction per call); calls block, so run them off the loop.

    Taking is one upsert that refills, checks and takes at once, so processes racing for the last token
    cannot both get it; a refused request takes nothing. Buckets idle long enough to be full again are
    deleted (at most once a minute per process), since a missing bucket starts full.
    """

    PRUNE_EVERY_MS = 60_000

    def __init__(
        self, engine: sa.Engine, name: str, rate: float, burst: float, now_ms: Callable[[], int]
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate, self.burst = rate, burst
        self._engine, self._name, self._now_ms = engine, name, now_ms
        self._dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._least = sa.func.least if engine.dialect.name == "postgresql" else sa.func.min
        self._full_ms = int(burst / rate * 1000) + 1
        self._pruned_ms = 0
        self._prune_lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Like `RateLimiter.take`: 0 when allowed, else the seconds until it would be."""
        now = self._now_ms()
        digest = hashlib.sha256(f"{self._name}\n{key}".encode()).hexdigest()
        t = rate_buckets.c
        refill = self._least(self.burst, t.tokens + (now - t.at_ms) * (self.rate / 1000.0))
        ins = self._dialect.insert(rate_buckets).values(
            key=digest, name=self._name, tokens=self.burst - cost, at_ms=now
        )
        stmt = ins.on_conflict_do_update(
            index_elements=[t.key], set_={"tokens": refill - cost, "at_ms": now}, where=refill >= cost
        ).returning(sa.literal_column("1"))
        with self._engine.begin() as db:
            if db.execute(stmt).first() is not None:
                wait = 0.0
            else:
                row = db.execute(sa.select(t.tokens, t.at_ms).where(t.key == digest)).one()
                tokens = min(self.burst, row.tokens + (now - row.at_ms) * self.rate / 1000.0)
                wait = max((cost - tokens) / self.rate, 1e-3)
        self._prune_if_due(now)
        return wait

    def _prune_if_due(self, now_ms: int) -> None:
        with self._prune_lock:
            if now_ms - self._pruned_ms < self.PRUNE_EVERY_MS:
                return
            self._pruned_ms = now_ms
        with self._engine.begin() as db:
            idle = (rate_buckets.c.name == self._name) & (rate_buckets.c.at_ms < now_ms - self._full_ms)
            db.execute(sa.delete(rate_buckets).where(idle))


def retry_after(wait_s: float) -> str:
    """`Retry-After` in whole seconds, rounded up (never 0 for a refused request)."""
    return str(max(1, math.ceil(wait_s)))
