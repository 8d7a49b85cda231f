"""The engine's and grouper's deadline heaps decide exactly what a scan of every alert and group would.

`tick` and `flush_due` look only at what is due (heaps of resolve timeouts, settle times, recent ends,
group flush times) instead of every open alert and group. The reference here is the scanning code they
replaced, run side by side on the same random mix of repeats, ends, flaps, late replays, resolve
timeouts, silences and operator actions: every step must give the same changes, in the same order,
the same notifications and the same state.
"""

from __future__ import annotations

import math
import random

import pytest

from hub.alerts.config import AlertsConfig, FlapConfig, RouteConfig, Timers
from hub.alerts.core import AlertCore, Step
from hub.alerts.engine import AlertEngine, Change, ChangeKind
from hub.alerts.grouping import Flushed, Grouper, LogEntry
from hub.alerts.model import Alert, Signal, labels_of
from hub.alerts.windows import Window, WindowKind
from hub.matchers import parse_matchers
from hub.notify.model import Notification

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000
S = 1000


class ScanEngine(AlertEngine):
    """The engine with the tick that scans every open and recent alert (the reference)."""

    def tick(self, now_ms: int) -> list[Change]:
        changes: list[Change] = []
        if self._next_boundary_ms is not None and now_ms >= self._next_boundary_ms:
            self.windows = [w for w in self.windows if not w.expired(now_ms)]
            self._next_boundary_ms = self._boundary(now_ms)
            changes += self._reevaluate(now_ms)
        window_ms = int(self.config.flap.window_s * 1000)
        calm = math.ceil(self.config.flap.transitions / 2)
        for alert in list(self.open.values()):
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
        for fp, alert in list(self._recent.items()):
            if alert.ends_ms is not None and alert.ends_ms < now_ms - window_ms:
                del self._recent[fp]
                self.by_id.pop(alert.id, None)
        return changes


class ScanGrouper(Grouper):
    """The grouper that scans every group for due flushes (the reference)."""

    def next_due_ms(self) -> int | None:
        dues = [g.next_flush_ms for g in self.groups.values() if g.next_flush_ms is not None]
        return min(dues) if dues else None

    def flush_due(self, now_ms: int) -> Flushed:
        notes: list[Notification] = []
        entries: list[LogEntry] = []
        gone: list[str] = []
        touched: list[Alert] = []
        for key, group in list(self.groups.items()):
            if group.next_flush_ms is None or group.next_flush_ms > now_ms:
                continue
            note = self._flush(group, now_ms, touched)
            if note is not None:
                notes.append(note)
                entries.append(LogEntry(group.receiver, key, group.notified_firing, now_ms))
            for alert_id, alert in list(group.alerts.items()):
                if not alert.is_open and (
                    group.receiver in alert.resolved_notified or group.receiver not in alert.notified
                ):
                    del group.alerts[alert_id]
            if group.alerts:
                group.next_flush_ms = now_ms + int(group.timers.group_interval_s * 1000)
            else:
                del self.groups[key]
                gone.append(key)
        return Flushed(notes, entries, touched, gone)


def _config() -> AlertsConfig:
    return AlertsConfig(
        routes=(
            RouteConfig(matchers=('severity="critical"',), receiver="pager", **{"continue": True}),
            RouteConfig(receiver="noc"),
        ),
        timers=Timers(group_wait_s=5, group_interval_s=20, repeat_interval_s=120),
        flap=FlapConfig(transitions=4, window_s=60),
        late_after_s=30,
        late_settle_s=8,
    )


def _pair() -> tuple[AlertCore, AlertCore]:
    fast, scan = AlertCore(_config()), AlertCore(_config())
    scan.engine = ScanEngine(scan.config)
    scan.grouper = ScanGrouper(scan.config)
    return fast, scan


def _summary(step: Step) -> tuple[object, ...]:
    """What a step did, without the random alert ids."""
    return (
        [
            (c.kind, c.alert.fingerprint, c.alert.status, c.alert.flapping, c.alert.eligible_ms)
            for c in step.changes
        ],
        [
            (n.id, n.receiver, n.group_key, n.status, sorted((a.fingerprint, a.status) for a in n.alerts))
            for n in step.notifications
        ],
        [(e.receiver, e.group_key, sorted(e.firing), e.last_notify_ms) for e in step.log],
        sorted(a.fingerprint for a in step.notified),
        step.gone_groups,
    )


def _state(core: AlertCore, now_ms: int) -> tuple[object, ...]:
    """What decides later steps. Flips older than the flap window decide nothing: the scan drops them at
    every tick, the heap engine when it next looks at the alert, so only the window's flips compare."""
    e, g = core.engine, core.grouper
    since = now_ms - int(e.config.flap.window_s * 1000)
    return (
        [
            (
                fp,
                a.status,
                a.count,
                a.last_seen_ms,
                a.flapping,
                a.active,
                [t for t in a.transitions if t > since],
                a.eligible_ms,
            )
            for fp, a in e.open.items()
        ],
        sorted((fp, a.ends_ms) for fp, a in e._recent.items()),
        len(e.by_id),
        [
            (
                k,
                gr.next_flush_ms,
                gr.last_notify_ms,
                sorted(gr.notified_firing),
                sorted(a.fingerprint for a in gr.alerts.values()),
            )
            for k, gr in g.groups.items()
        ],
        g.next_due_ms(),
    )


def _signal(rng: random.Random, now: int) -> Signal:
    device = f"sw{rng.randrange(6)}"
    name = rng.choice(["LinkDown", "LinkDown", "BmcEvent", "EdgeAnomaly"])
    labels = {
        "alertname": name,
        "agent": "dc1/a1",
        "site": f"dc{rng.randrange(2)}",
        "device": device,
        "ifIndex": str(rng.randrange(3)),
    }
    late = rng.random() < 0.05
    ts = now - 45 * S if late else now - rng.randrange(0, 2 * S)
    resolve_after = rng.choice([None, None, 15 * S, 40 * S])
    return Signal(
        labels_of(labels),
        rng.random() < 0.7,
        ts,
        rng.choice(["warning", "critical"]),
        (("summary", name),),
        "test",
        None,
        (),
        resolve_after,
    )


@pytest.mark.parametrize("seed", range(12))
def test_the_deadline_heaps_give_the_same_steps_as_scanning_every_alert_and_group(seed: int) -> None:
    rng = random.Random(seed)
    fast, scan = _pair()
    now = T0
    steps = kinds = notes = 0
    seen_kinds: set[ChangeKind] = set()
    for i in range(400):
        now += rng.choice([0, 0, 200, 1000, 3 * S, 7 * S, 25 * S])
        r = rng.random()
        if r < 0.6:
            sigs = [_signal(rng, now) for _ in range(rng.randrange(1, 6))]
            a, b = fast.signals(sigs, now), scan.signals(sigs, now)
        elif r < 0.65:
            start = now + rng.randrange(0, 30 * S)
            matcher = rng.choice(['device="sw1"', 'alertname="BmcEvent"', 'site="dc0"'])
            w = Window(
                f"w{i}", WindowKind.SILENCE, parse_matchers([matcher]), start, start + 40 * S, "t", now
            )
            windows = [*fast.engine.windows, w]
            a = fast.changed(fast.engine.set_windows(windows, now), now)
            b = scan.changed(scan.engine.set_windows(list(windows), now), now)
        elif r < 0.7 and fast.engine.open:
            fp = rng.choice(sorted(fast.engine.open))
            act = rng.choice(["acknowledge", "resolve"])
            ca = getattr(fast.engine, act)(fast.engine.open[fp].id, "op", now)
            cb = getattr(scan.engine, act)(scan.engine.open[fp].id, "op", now)
            a = fast.changed([ca] if ca else [], now)
            b = scan.changed([cb] if cb else [], now)
        else:
            a, b = fast.tick(now), scan.tick(now)
        assert _summary(a) == _summary(b), f"step {i}"
        assert _state(fast, now) == _state(scan, now), f"state after step {i}"
        steps += 1
        kinds += len(a.changes)
        notes += len(a.notifications)
        seen_kinds |= {c.kind for c in a.changes}
    assert steps == 400 and kinds > 100 and notes > 10
    # The mix reached every time-driven path the heaps stand in for (over all seeds most of them).
    assert ChangeKind.RESOLVED in seen_kinds and ChangeKind.CREATED in seen_kinds


def test_over_all_seeds_the_mix_reaches_every_time_driven_change() -> None:
    seen: set[ChangeKind] = set()
    for seed in range(12):
        rng = random.Random(seed)
        fast, _ = _pair()
        now = T0
        for _ in range(400):
            now += rng.choice([0, 0, 200, 1000, 3 * S, 7 * S, 25 * S])
            if rng.random() < 0.6:
                step = fast.signals([_signal(rng, now) for _ in range(rng.randrange(1, 6))], now)
            else:
                step = fast.tick(now)
            seen |= {c.kind for c in step.changes}
    assert {ChangeKind.FLAP_ENDED, ChangeKind.ELIGIBLE, ChangeKind.FLAPPING, ChangeKind.REOPENED} <= seen


def test_a_tick_with_thousands_of_open_alerts_and_nothing_due_looks_at_none_of_them() -> None:
    core = AlertCore(_config())
    now = T0
    sigs = [
        Signal(labels_of({"alertname": "LinkDown", "site": "dc1", "device": f"d{i}"}), True, now)
        for i in range(5000)
    ]
    core.signals(sigs, now)
    core.tick(now + 6 * S)  # the first flush of every group
    assert len(core.engine.open) == 5000 and len(core.grouper.groups) == 5000
    due, resolve, eligible, calm = core.engine._due_alerts(now + 7 * S)
    assert (due, resolve, eligible, calm) == ([], set(), set(), set())
    assert core.next_due_ms() == now + 6 * S + 20 * S


def test_a_tick_with_thousands_of_flapping_alerts_looks_only_at_those_whose_flap_window_calmed() -> None:
    engine = AlertEngine(_config())
    for i in range(2000):  # fire, end, fire, end, fire: four flips, flapping; d0 flips first
        labels = labels_of({"alertname": "LinkDown", "site": "dc1", "device": f"d{i}"})
        for k in range(5):
            t = T0 + k * S + (0 if i == 0 else 10 * S)
            engine.apply([Signal(labels, k % 2 == 0, t)], t)
    assert sum(a.flapping for a in engine.open.values()) == 2000
    # Calm = fewer than 2 flips in the 60 s window: d0's third flip (T0 + 3 s) ages out at T0 + 63 s.
    due, _, _, calm = engine._due_alerts(T0 + 62 * S)
    assert (due, calm) == ([], set())
    due, _, _, calm = engine._due_alerts(T0 + 63 * S)
    assert [a.label("device") for a in due] == ["d0"] and len(calm) == 1


def test_a_flap_that_calms_when_its_resolve_timeout_is_due_resolves_at_the_next_tick() -> None:
    labels = labels_of({"alertname": "BmcEvent", "site": "dc1", "device": "bmc1"})
    for core in _pair():
        for i in range(5):  # fire, end, fire, end, fire: four flips in the window, ends active
            core.signals([Signal(labels, i % 2 == 0, T0 + i * S, resolve_after_ms=15 * S)], T0 + i * S)
        (alert,) = core.engine.open.values()
        assert alert.flapping and alert.active
        later = T0 + 4 * S + 61 * S
        assert [c.kind for c in core.tick(later).changes] == [ChangeKind.FLAP_ENDED]
        assert [c.kind for c in core.tick(later + S).changes] == [ChangeKind.RESOLVED]
        assert core.engine.open == {}
