"""The alert lifecycle: signals in, alert changes out. Pure state and time; no I/O (service.py persists).

Rules (after Alertmanager, Keep and the NOC's experience):
- **Dedup**: signals with one fingerprint are one alert; a repeat bumps `count` and `last_seen_ms`.
- **Resolve**: a firing=False signal, an API call, or `resolve_after_ms` without a repeat.
- **Flap**: `flap.transitions` flips within `flap.window_s` make the alert flapping: it stays open (the
  condition is tracked in `active`) so grouping notifies it once, and ends as its condition is once the
  flips calm down. An alert resolved less than a flap window ago reopens instead of starting anew.
- **Offline inhibition**: while an agent is offline, alerts for what is behind it are not created; only
  creation is inhibited, never resolution, and monitoring goes on.
- **Silences / maintenance**: matching alerts are recorded as suppressed and re-evaluated at every window
  boundary, so one still firing when the window ends notifies once.
- **Late replays**: a signal older than `late_after_s` keeps its own times and becomes notifiable only
  after `late_settle_s`; an end that arrives before it keeps it from ever notifying.
"""

from __future__ import annotations

import heapq
import itertools
import math
import secrets
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from hub.alerts.config import AlertsConfig
from hub.alerts.fingerprint import fingerprint
from hub.alerts.model import Alert, AlertStatus, Signal
from hub.alerts.windows import Window, first_active

AGENT_LABEL = "agent"
OFFLINE_ALERTNAME = "AgentOffline"
# Ends remembered for fingerprints with no open alert, so an onset replayed after its end is recorded
# as over instead of firing for ever.
_MAX_PENDING_ENDS = 50_000


class ChangeKind(Enum):
    CREATED = "created"
    UPDATED = "updated"  # a repeat: count and last seen
    REOPENED = "reopened"
    RESOLVED = "resolved"
    SUPPRESSED = "suppressed"
    UNSUPPRESSED = "unsuppressed"
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"
    FLAPPING = "flapping"
    FLAP_ENDED = "flap_ended"
    ELIGIBLE = "eligible"  # a late alert's settle time passed


@dataclass(frozen=True, slots=True)
class Change:
    """What happened to one alert; `alert` is the engine's live object (read it, don't keep it)."""

    alert: Alert
    kind: ChangeKind
    actor: str = ""


def new_id(now_ms: int) -> str:
    """A time-sortable id (12 hex digits of ms, 12 random), so listings page by id in creation order."""
    return f"{now_ms:012x}{secrets.token_hex(6)}"


class AlertEngine:
    """Holds every open alert (and those resolved within a flap window) in memory.

    One engine owns alert state at a time (the hub runs it as a run-once job), so the in-memory view is
    the truth and `service.py` writes each change through to the database in the same step.
    """

    def __init__(self, config: AlertsConfig) -> None:
        self.config = config
        self.open: dict[str, Alert] = {}
        self.by_id: dict[str, Alert] = {}
        self._recent: dict[str, Alert] = {}  # resolved within a flap window, by fingerprint
        self._pending_ends: OrderedDict[str, int] = OrderedDict()
        self.windows: list[Window] = []
        self.offline: dict[str, tuple[str, ...]] = {}  # agent -> devices behind it
        self.stats: Counter[str] = Counter()
        self._next_boundary_ms: int | None = None
        # Deadlines, so a tick looks only at alerts with something due instead of every open one: heaps
        # of (due ms, tie, fingerprint, alert id), checked against the alert when popped (an entry whose
        # alert moved on is dropped or pushed again with its new due time).
        self._tie = itertools.count()
        self._resolve_due: list[tuple[int, int, str, str]] = []  # last_seen + resolve_after (a lower bound)
        self._eligible_due: list[tuple[int, int, str, str]] = []
        self._recent_due: list[tuple[int, int, str, str]] = []  # ends_ms of alerts in _recent
        # When a flapping alert may calm down: its `calm`-th newest transition leaves the flap window.
        self._flap_due: list[tuple[int, int, str, str]] = []
        # Order of insertion into `open`: a tick's changes come out in that order, as a scan would give.
        self._opened_at: dict[str, int] = {}

    # ---- state loading -------------------------------------------------------------------------------

    def load(self, alerts: Iterable[Alert], windows: Iterable[Window], now_ms: int) -> None:
        """Restores state after a restart: open alerts, recently resolved ones, active windows."""
        window_ms = int(self.config.flap.window_s * 1000)
        for a in alerts:
            if a.is_open:
                self._open(a)
                self.by_id[a.id] = a
            elif a.ends_ms is not None and a.ends_ms >= now_ms - window_ms:
                self._remember(a)
                self.by_id[a.id] = a
        self.windows = [w for w in windows if not w.expired(now_ms)]
        self._next_boundary_ms = self._boundary(now_ms)

    # ---- signals --------------------------------------------------------------------------------------

    def apply(self, signals: Sequence[Signal], now_ms: int) -> list[Change]:
        """Applies signals in order; returns every change (a repeat of an open alert is one UPDATED)."""
        changes: list[Change] = []
        self.stats["signals"] += len(signals)
        for s in signals:
            fp = s.fingerprint or fingerprint(s.labels, self.config.fingerprint_labels)
            change = self._fire(fp, s, now_ms) if s.firing else self._end(fp, s, now_ms)
            if change is not None:
                changes.append(change)
        return changes

    def _fire(self, fp: str, s: Signal, now_ms: int) -> Change | None:
        alert = self.open.get(fp)
        if alert is not None:
            self.stats["deduplicated"] += 1
            alert.count += 1
            alert.last_seen_ms = max(alert.last_seen_ms, s.ts_ms, now_ms)
            alert.annotations = s.annotations or alert.annotations
            alert.severity = s.severity
            _take_verdict(alert, s)
            if alert.flapping and not alert.active:
                alert.active = True
                self._flip(alert, now_ms)
            return Change(alert, ChangeKind.UPDATED)
        ended = self._pending_ends.get(fp)
        if ended is not None and s.ts_ms <= ended:
            # Its end arrived first (a replay out of order): record it as over, never notify.
            del self._pending_ends[fp]
            self.stats["recorded_over"] += 1
            alert = self._new(fp, s, now_ms)
            alert.status, alert.active, alert.ends_ms = AlertStatus.RESOLVED, False, ended
            self._remember(alert)
            return Change(alert, ChangeKind.CREATED)
        recent = self._recent.get(fp)
        if recent is not None and recent.resolved_by is None and recent.ends_ms is not None:
            if s.ts_ms < recent.ends_ms:
                self.stats["stale_onsets"] += 1  # an onset older than the end we already applied
                return None
            return self._reopen(recent, s, now_ms)
        if self._inhibited(s):
            self.stats["inhibited"] += 1
            return None
        if len(self.open) >= self.config.max_open_alerts:
            self.stats["refused_full"] += 1
            return None
        alert = self._new(fp, s, now_ms)
        self._open(alert)
        self._suppress_if_windowed(alert, now_ms)
        self.stats["created"] += 1
        return Change(alert, ChangeKind.CREATED)

    def _new(self, fp: str, s: Signal, now_ms: int) -> Alert:
        late = s.ts_ms < now_ms - self.config.late_after_s * 1000
        alert = Alert(
            id=new_id(now_ms),
            fingerprint=fp,
            labels=s.labels,
            annotations=s.annotations,
            severity=s.severity,
            source=s.source,
            status=AlertStatus.FIRING,
            starts_ms=s.ts_ms,
            first_seen_ms=now_ms,
            last_seen_ms=max(s.ts_ms, now_ms),
            links=s.links,
            resolve_after_ms=s.resolve_after_ms,
            verdict=s.verdict,
            verdict_features=s.verdict_features,
            eligible_ms=now_ms + int(self.config.late_settle_s * 1000) if late else 0,
        )
        self.by_id[alert.id] = alert
        return alert

    def _reopen(self, alert: Alert, s: Signal, now_ms: int) -> Change:
        del self._recent[alert.fingerprint]
        alert.status, alert.active, alert.ends_ms = AlertStatus.FIRING, True, None
        alert.count += 1
        alert.last_seen_ms = max(s.ts_ms, now_ms)
        alert.annotations, alert.severity = s.annotations or alert.annotations, s.severity
        _take_verdict(alert, s)
        alert.resolved_notified.clear()
        alert.ack_by = alert.ack_ms = None
        self._open(alert)
        self._flip(alert, now_ms)
        self._suppress_if_windowed(alert, now_ms)
        self.stats["reopened"] += 1
        return Change(alert, ChangeKind.FLAPPING if alert.flapping else ChangeKind.REOPENED)

    def _end(self, fp: str, s: Signal, now_ms: int) -> Change | None:
        alert = self.open.get(fp)
        if alert is None:
            self.stats["ends_without_alert"] += 1
            self._pending_ends[fp] = max(s.ts_ms, self._pending_ends.get(fp, 0))
            self._pending_ends.move_to_end(fp)
            while len(self._pending_ends) > _MAX_PENDING_ENDS:
                self._pending_ends.popitem(last=False)
            return None
        if s.ts_ms < alert.starts_ms:
            self.stats["stale_ends"] += 1
            return None
        if alert.flapping:
            if alert.active:
                alert.active = False
                self._flip(alert, now_ms)
            return Change(alert, ChangeKind.UPDATED)
        return self._resolve(alert, s.ts_ms, now_ms, actor="", flip=True)

    def _resolve(self, alert: Alert, ends_ms: int, now_ms: int, actor: str, flip: bool) -> Change:
        del self.open[alert.fingerprint]
        del self._opened_at[alert.fingerprint]
        alert.status, alert.active, alert.ends_ms = AlertStatus.RESOLVED, False, ends_ms
        alert.resolved_by = actor or None
        if flip:
            self._flip(alert, now_ms)
        self._remember(alert)
        self.stats["resolved"] += 1
        return Change(alert, ChangeKind.RESOLVED, actor)

    def _flip(self, alert: Alert, now_ms: int) -> None:
        """Records a state flip and turns flapping on once there are enough in the window."""
        window_ms = int(self.config.flap.window_s * 1000)
        alert.transitions = [t for t in alert.transitions if t > now_ms - window_ms] + [now_ms]
        if not alert.flapping and len(alert.transitions) >= self.config.flap.transitions:
            alert.flapping = True
            self.stats["flapping"] += 1
            self._schedule_calm(alert)

    def _open(self, alert: Alert) -> None:
        """Puts `alert` in `open` (it was not there) and schedules its deadlines."""
        self.open[alert.fingerprint] = alert
        self._opened_at[alert.fingerprint] = next(self._tie)
        self._schedule(alert)

    def _schedule(self, alert: Alert, resolve: bool = True, eligible: bool = True, calm: bool = True) -> None:
        fp, aid = alert.fingerprint, alert.id
        if resolve and alert.resolve_after_ms is not None:
            due = alert.last_seen_ms + alert.resolve_after_ms
            heapq.heappush(self._resolve_due, (due, next(self._tie), fp, aid))
        if eligible and alert.eligible_ms:
            heapq.heappush(self._eligible_due, (alert.eligible_ms, next(self._tie), fp, aid))
        if calm and alert.flapping:
            self._schedule_calm(alert)

    def _calm_ms(self, alert: Alert) -> int:
        """When `alert` stops flapping unless it flips again: a transition falls out of the window only
        by ageing, so this is exact now and a lower bound after later flips (the heap re-checks)."""
        calm = math.ceil(self.config.flap.transitions / 2)
        if len(alert.transitions) < calm:
            return 0
        return alert.transitions[-calm] + int(self.config.flap.window_s * 1000)

    def _schedule_calm(self, alert: Alert) -> None:
        heapq.heappush(self._flap_due, (self._calm_ms(alert), next(self._tie), alert.fingerprint, alert.id))

    def _remember(self, alert: Alert) -> None:
        """Keeps a resolved alert for a flap window (it may reopen), by fingerprint."""
        self._recent[alert.fingerprint] = alert
        if alert.ends_ms is not None:
            heapq.heappush(self._recent_due, (alert.ends_ms, next(self._tie), alert.fingerprint, alert.id))

    def _inhibited(self, s: Signal) -> bool:
        """Creation of an alert about something behind an offline agent is inhibited (not its end)."""
        if not self.offline:
            return False
        labels = dict(s.labels)
        return labels.get("alertname") != OFFLINE_ALERTNAME and labels.get(AGENT_LABEL, "") in self.offline

    # ---- operator actions -----------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, actor: str, now_ms: int) -> Change | None:
        alert = self.open_by_id(alert_id)
        if alert is None or alert.ack_by is not None:
            return None
        alert.ack_by, alert.ack_ms = actor, now_ms
        self._status(alert)
        return Change(alert, ChangeKind.ACKNOWLEDGED, actor)

    def unacknowledge(self, alert_id: str, actor: str, now_ms: int) -> Change | None:
        alert = self.open_by_id(alert_id)
        if alert is None or alert.ack_by is None:
            return None
        alert.ack_by = alert.ack_ms = None
        self._status(alert)
        return Change(alert, ChangeKind.UNACKNOWLEDGED, actor)

    def resolve(self, alert_id: str, actor: str, now_ms: int) -> Change | None:
        """Resolves by hand; a flapping alert too (the operator has the last word)."""
        alert = self.open_by_id(alert_id)
        if alert is None:
            return None
        alert.flapping = False
        return self._resolve(alert, now_ms, now_ms, actor=actor, flip=False)

    def open_by_id(self, alert_id: str) -> Alert | None:
        alert = self.by_id.get(alert_id)
        return alert if alert is not None and alert.is_open else None

    # ---- agents ---------------------------------------------------------------------------------------

    def set_offline(self, agent: str, devices: tuple[str, ...]) -> None:
        self.offline[agent] = devices

    def set_online(self, agent: str) -> None:
        self.offline.pop(agent, None)

    # ---- windows and time -----------------------------------------------------------------------------

    def set_windows(self, windows: list[Window], now_ms: int) -> list[Change]:
        """Replaces the silences and maintenance windows and re-evaluates every open alert."""
        self.windows = [w for w in windows if not w.expired(now_ms)]
        self._next_boundary_ms = self._boundary(now_ms)
        return self._reevaluate(now_ms)

    def tick(self, now_ms: int) -> list[Change]:
        """Time-driven changes: window boundaries, resolve timeouts, flapping calming down, late alerts
        becoming notifiable."""
        changes: list[Change] = []
        if self._next_boundary_ms is not None and now_ms >= self._next_boundary_ms:
            self.windows = [w for w in self.windows if not w.expired(now_ms)]
            self._next_boundary_ms = self._boundary(now_ms)
            changes += self._reevaluate(now_ms)
        window_ms = int(self.config.flap.window_s * 1000)
        calm = math.ceil(self.config.flap.transitions / 2)
        due, resolve_popped, eligible_popped, calm_popped = self._due_alerts(now_ms)
        for alert in due:
            if alert.flapping:
                alert.transitions = [t for t in alert.transitions if t > now_ms - window_ms]
                if len(alert.transitions) < calm:
                    alert.flapping = False
                    if alert.active:
                        changes.append(Change(alert, ChangeKind.FLAP_ENDED))
                    else:
                        changes.append(self._resolve(alert, now_ms, now_ms, actor="", flip=False))
                    continue
            if alert.resolve_after_ms is not None and now_ms >= alert.last_seen_ms + alert.resolve_after_ms:
                changes.append(self._resolve(alert, now_ms, now_ms, actor="", flip=False))
            elif alert.eligible_ms and now_ms >= alert.eligible_ms:
                alert.eligible_ms = 0
                changes.append(Change(alert, ChangeKind.ELIGIBLE))
        for alert in due:  # still open: its consumed deadlines again (a calmed flap resolves next tick)
            fp = alert.fingerprint
            if self.open.get(fp) is alert:
                self._schedule(
                    alert,
                    resolve=fp in resolve_popped,
                    eligible=fp in eligible_popped,
                    calm=fp in calm_popped,
                )
        self._forget_recent(now_ms - window_ms)
        self._compact()
        return changes

    def _due_alerts(self, now_ms: int) -> tuple[list[Alert], set[str], set[str], set[str]]:
        """The open alerts a tick at `now_ms` may change (a flap calmed down, a resolve timeout or a
        settle time passed), once each, in `open`'s order, and the fingerprints whose resolve / settle /
        calm entries were consumed (pushed again by `tick` for those that stay open)."""
        found: dict[str, Alert] = {}
        resolve_popped: set[str] = set()
        eligible_popped: set[str] = set()
        calm_popped: set[str] = set()
        heap = self._flap_due
        while heap and heap[0][0] <= now_ms:
            _, _, fp, aid = heapq.heappop(heap)
            alert = self.open.get(fp)
            if alert is None or alert.id != aid or not alert.flapping:
                continue
            due_ms = self._calm_ms(alert)
            if due_ms > now_ms:  # flipped again since: not calm yet
                heapq.heappush(heap, (due_ms, next(self._tie), fp, aid))
            else:
                found[fp] = alert
                calm_popped.add(fp)
        heap = self._resolve_due
        while heap and heap[0][0] <= now_ms:
            _, _, fp, aid = heapq.heappop(heap)
            alert = self.open.get(fp)
            if alert is None or alert.id != aid or alert.resolve_after_ms is None:
                continue
            due_ms = alert.last_seen_ms + alert.resolve_after_ms
            if due_ms > now_ms:  # seen again since: not due yet
                heapq.heappush(heap, (due_ms, next(self._tie), fp, aid))
            else:
                found[fp] = alert
                resolve_popped.add(fp)
        heap = self._eligible_due
        while heap and heap[0][0] <= now_ms:
            _, _, fp, aid = heapq.heappop(heap)
            late = self.open.get(fp)
            if late is not None and late.id == aid and late.eligible_ms and late.eligible_ms <= now_ms:
                found[fp] = late
                eligible_popped.add(fp)
        due = sorted(found.values(), key=lambda a: self._opened_at[a.fingerprint])
        return due, resolve_popped, eligible_popped, calm_popped

    def _compact(self) -> None:
        """Rebuilds a deadline heap grown mostly stale (alerts resolved long before their entry's time),
        so memory follows the open alerts, not every alert ever created."""
        limit = 2 * (len(self.open) + len(self._recent)) + 1024
        if len(self._resolve_due) + len(self._eligible_due) + len(self._flap_due) > limit:
            self._resolve_due, self._eligible_due, self._flap_due = [], [], []
            for alert in self.open.values():
                self._schedule(alert)
        if len(self._recent_due) > limit:
            recent = [(fp, a.id, a.ends_ms) for fp, a in self._recent.items() if a.ends_ms is not None]
            self._recent_due = [(ends, next(self._tie), fp, aid) for fp, aid, ends in recent]
            heapq.heapify(self._recent_due)

    def _forget_recent(self, before_ms: int) -> None:
        """Drops resolved alerts that ended before `before_ms`: they can no longer reopen."""
        heap = self._recent_due
        while heap and heap[0][0] < before_ms:
            _, _, fp, aid = heapq.heappop(heap)
            alert = self._recent.get(fp)
            if alert is None or alert.id != aid or alert.ends_ms is None:
                continue
            if alert.ends_ms < before_ms:
                del self._recent[fp]
                self.by_id.pop(alert.id, None)
            else:
                heapq.heappush(heap, (alert.ends_ms, next(self._tie), fp, aid))

    def _boundary(self, now_ms: int) -> int | None:
        bounds = [b for w in self.windows if (b := w.next_boundary(now_ms)) is not None]
        return min(bounds) if bounds else None

    def _reevaluate(self, now_ms: int) -> list[Change]:
        changes = []
        for alert in self.open.values():
            before = alert.silenced_by
            self._suppress_if_windowed(alert, now_ms)
            if before is None and alert.silenced_by is not None:
                changes.append(Change(alert, ChangeKind.SUPPRESSED))
            elif before is not None and alert.silenced_by is None:
                changes.append(Change(alert, ChangeKind.UNSUPPRESSED))
        return changes

    def _suppress_if_windowed(self, alert: Alert, now_ms: int) -> None:
        window = first_active(self.windows, alert.labels, now_ms) if self.windows else None
        alert.silenced_by = window.id if window is not None else None
        self._status(alert)

    @staticmethod
    def _status(alert: Alert) -> None:
        """The displayed status: resolved, else suppressed, else acknowledged, else firing."""
        if not alert.is_open:
            return
        if alert.silenced_by is not None:
            alert.status = AlertStatus.SUPPRESSED
        elif alert.ack_by is not None:
            alert.status = AlertStatus.ACKNOWLEDGED
        else:
            alert.status = AlertStatus.FIRING


def _take_verdict(alert: Alert, s: Signal) -> None:
    """A repeat's verdict is the latest word: a dismissed alert whose onset comes back confirmed pages."""
    if s.verdict is not None:
        alert.verdict, alert.verdict_features = s.verdict, s.verdict_features
