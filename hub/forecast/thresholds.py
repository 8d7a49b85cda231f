"""Where a series' threshold comes from: the device's own limit, else its metric family's rule (a fixed
value, or a fraction of a companion capacity series such as a filesystem's size)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from hub.bus.messages import LimitCrossed, Message
from hub.forecast.config import ThresholdRule
from hub.forecast.crossing import Direction
from hub.matchers import Matcher, MatchOp
from hub.store.base import AGENT_LABEL, Agg, RangeQuery, Store
from shared.model import SeriesKey

# Device limits remembered at most (least recently reported dropped first).
MAX_DEVICE_LIMITS = 100_000
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Threshold:
    value: float
    source: str  # "device crit_high", "capacity device_storage_size_bytes", "configured"
    direction: Direction


class DeviceLimits:
    """The latest high / low limit each series' device reported, learnt from `LimitCrossed` states
    (ingest publishes one per batch for every series that carries limits). Thread-safe."""

    def __init__(self, max_series: int = MAX_DEVICE_LIMITS) -> None:
        self._max = max_series
        self._limits: OrderedDict[SeriesKey, Threshold] = OrderedDict()
        self._lock = threading.Lock()

    async def handle(self, msg: Message) -> None:
        """Bus handler: remembers a `LimitCrossed`'s limit for its series (health states carry none)."""
        if not isinstance(msg, LimitCrossed):
            return
        direction = {"high": Direction.ABOVE, "low": Direction.BELOW}.get(msg.limit_name.rsplit("_", 1)[-1])
        if direction is None:
            return
        key = SeriesKey(msg.metric, tuple(sorted((*msg.labels, (AGENT_LABEL, msg.agent)))))
        with self._lock:
            self._limits[key] = Threshold(msg.limit_value, f"device {msg.limit_name}", direction)
            self._limits.move_to_end(key)
            while len(self._limits) > self._max:
                self._limits.popitem(last=False)

    def get(self, key: SeriesKey) -> Threshold | None:
        with self._lock:
            return self._limits.get(key)

    def keys(self) -> list[SeriesKey]:
        with self._lock:
            return list(self._limits)


def from_rule(
    store: Store, rule: ThresholdRule, key: SeriesKey, start_ms: int, end_ms: int
) -> Threshold | None:
    """The rule's threshold for `key`: its value, or `fraction` of the companion series' latest value in
    [start_ms, end_ms] (None when that series has no point there). The companion is read as daily last
    values, so a month of a fast-polled capacity gauge is a few dozen points, not a million."""
    direction = Direction(rule.direction)
    if rule.value is not None:
        return Threshold(rule.value, "configured", direction)
    assert rule.capacity_metric is not None  # the rule's validator requires one of the two
    matchers = tuple(Matcher(k, MatchOp.EQ, v) for k, v in key.labels)
    q = RangeQuery(rule.capacity_metric, start_ms, end_ms, matchers, step_ms=_DAY_MS, agg=Agg.LAST)
    for r in store.query(q):
        if r.key.labels == key.labels and r.values.shape[0]:
            value = float(r.values[-1]) * rule.fraction
            return Threshold(value, f"capacity {rule.capacity_metric}", direction)
    return None
