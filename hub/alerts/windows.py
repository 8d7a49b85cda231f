"""Silences and maintenance windows: label matchers plus a time span, one-off or recurring.

A silence is one-off (Alertmanager's); a maintenance window may recur by an RFC 5545 RRULE
(`FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0`) evaluated by python-dateutil in the window's time zone, each
occurrence lasting `duration_ms`. Alerts that fire inside are recorded as suppressed; the engine
re-evaluates them at every window boundary, so one still firing when a window ends notifies once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule as RRule
from dateutil.rrule import rrulestr

from hub.alerts.model import Labels
from hub.matchers import Matcher, all_match

MAX_RRULE_LEN = 256
MAX_DURATION_MS = 7 * 86_400_000
# Rules recurring more often than daily would make "maintenance" a permanent silence with extra steps.
_FREQ = re.compile(r"(?:^|;)FREQ=(DAILY|WEEKLY|MONTHLY|YEARLY)(?:;|$)")


class WindowError(ValueError):
    """Raised when a window's times, recurrence rule or time zone are invalid; the message says why."""


class WindowKind(Enum):
    SILENCE = "silence"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True, slots=True)
class Window:
    """One silence or maintenance window. For a recurring one, `ends_ms` is when recurrence stops."""

    id: str
    kind: WindowKind
    matchers: tuple[Matcher, ...]
    starts_ms: int
    ends_ms: int | None
    created_by: str
    created_ms: int
    comment: str = ""
    rrule: str | None = None
    duration_ms: int | None = None
    timezone: str = "UTC"
    _compiled: RRule | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.matchers:
            raise WindowError("at least one matcher is required (a window matching everything is a mistake)")
        if self.rrule is None:
            if self.ends_ms is None or self.ends_ms <= self.starts_ms:
                raise WindowError("ends must be after starts")
        else:
            if not self.duration_ms or not 0 < self.duration_ms <= MAX_DURATION_MS:
                raise WindowError("a recurring window needs a duration between 1 ms and 7 days")
            object.__setattr__(self, "_compiled", self._parse_rule())

    def _zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise WindowError(f"unknown time zone {self.timezone!r}") from None

    def _rule(self) -> RRule:
        assert self._compiled is not None
        return self._compiled

    def _parse_rule(self) -> RRule:
        assert self.rrule is not None
        if len(self.rrule) > MAX_RRULE_LEN:
            raise WindowError(f"rrule longer than {MAX_RRULE_LEN} characters")
        start = dt.datetime.fromtimestamp(self.starts_ms / 1000, self._zone())
        try:
            rule = rrulestr(self.rrule, dtstart=start)
        except (ValueError, TypeError) as exc:
            raise WindowError(f"bad rrule: {exc}") from None
        if not isinstance(rule, RRule) or not _FREQ.search(self.rrule.upper().removeprefix("RRULE:")):
            raise WindowError("rrule must be one rule with FREQ=DAILY, WEEKLY, MONTHLY or YEARLY")
        return rule

    def matches(self, labels: Labels) -> bool:
        return all_match(self.matchers, labels)

    def _occurrence(self, now_ms: int) -> tuple[int, int] | None:
        """The [start, end) of the last occurrence that started at or before `now_ms`."""
        if self.rrule is None:
            assert self.ends_ms is not None
            return (self.starts_ms, self.ends_ms) if self.starts_ms <= now_ms else None
        assert self.duration_ms is not None
        last = self._rule().before(dt.datetime.fromtimestamp(now_ms / 1000, self._zone()), inc=True)
        if last is None:
            return None
        start = int(last.timestamp() * 1000)
        if self.ends_ms is not None and start >= self.ends_ms:
            return None
        return start, start + self.duration_ms

    def active_at(self, now_ms: int) -> bool:
        span = self._occurrence(now_ms)
        return span is not None and span[0] <= now_ms < span[1]

    def next_boundary(self, now_ms: int) -> int | None:
        """The next time after `now_ms` at which this window starts or ends (None: never again)."""
        candidates: list[int] = []
        span = self._occurrence(now_ms)
        if span is not None and span[1] > now_ms:
            candidates.append(span[1])
        if self.rrule is None:
            if self.starts_ms > now_ms:
                candidates.append(self.starts_ms)
        else:
            nxt = self._rule().after(dt.datetime.fromtimestamp(now_ms / 1000, self._zone()), inc=False)
            if nxt is not None:
                start = int(nxt.timestamp() * 1000)
                if self.ends_ms is None or start < self.ends_ms:
                    candidates.append(start)
        return min(candidates) if candidates else None

    def expired(self, now_ms: int) -> bool:
        """True once the window can never be active again (it may then be forgotten)."""
        return self.next_boundary(now_ms) is None and not self.active_at(now_ms)


def first_active(windows: list[Window], labels: Labels, now_ms: int) -> Window | None:
    """The window (if any) that suppresses an alert with `labels` at `now_ms`."""
    for w in windows:
        if w.matches(labels) and w.active_at(now_ms):
            return w
    return None
