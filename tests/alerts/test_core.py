"""The alert path without I/O: dedup, lifecycle, flap, inhibition, windows, group timers, resolve delivery."""

from __future__ import annotations

import itertools

import pytest

from hub.alerts.config import AlertsConfig, FlapConfig, RouteConfig, Timers
from hub.alerts.core import AlertCore, Step
from hub.alerts.engine import new_id
from hub.alerts.grouping import LogEntry
from hub.alerts.model import Alert, AlertStatus, Signal, labels_of
from hub.alerts.windows import Window, WindowError, WindowKind
from hub.matchers import parse_matchers
from hub.notify.model import Notification

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000
S = 1000
MIN = 60 * S


def config(**kw: object) -> AlertsConfig:
    base: dict[str, object] = {
        "routes": [RouteConfig(receiver="noc")],
        "timers": Timers(group_wait_s=30, group_interval_s=300, repeat_interval_s=4 * 3600),
    }
    base.update(kw)
    return AlertsConfig.model_validate(base)


def sig(
    firing: bool = True, ts: int = T0, device: str = "sw1", name: str = "LinkDown", **labels: str
) -> Signal:
    return Signal(
        labels_of({"alertname": name, "agent": "dc1/rack12", "site": "dc1", "device": device, **labels}),
        firing,
        ts,
        severity="critical",
    )


class Harness:
    """An AlertCore plus a clock and a record of every notification sent."""

    def __init__(self, cfg: AlertsConfig | None = None) -> None:
        self.core = AlertCore(cfg or config())
        self.now = T0
        self.sent: list[Notification] = []
        self.seen: dict[str, Alert] = {}

    def _take(self, step: Step) -> Step:
        self.sent += step.notifications
        self.seen.update((a.id, a) for a in step.alerts)
        return step

    def signals(self, *signals: Signal) -> Step:
        return self._take(self.core.signals(list(signals), self.now))

    def advance(self, ms: int, tick_ms: int = S) -> None:
        """Moves time in `tick_ms` steps, ticking the core at each (the service's loop does the same)."""
        end = self.now + ms
        while self.now < end:
            self.now = min(end, self.now + tick_ms)
            self._take(self.core.tick(self.now))

    def act(self, changes: list) -> Step:  # type: ignore[type-arg]
        return self._take(self.core.changed([c for c in changes if c is not None], self.now))

    def statuses(self) -> list[str]:
        return [n.status for n in self.sent]


def test_a_thousand_identical_events_are_one_alert_counted_a_thousand_times() -> None:
    h = Harness()
    for i in range(1000):
        h.now = T0 + i
        h.signals(sig(ts=T0 + i))
    (alert,) = h.core.engine.open.values()
    assert alert.count == 1000
    assert alert.first_seen_ms == T0 and alert.last_seen_ms == T0 + 999
    assert h.core.engine.stats["created"] == 1 and h.core.engine.stats["deduplicated"] == 999


def test_group_wait_then_group_interval_then_repeat_interval() -> None:
    h = Harness()
    h.signals(sig(device="sw1"))
    h.advance(29 * S)
    assert h.sent == []  # group_wait is 30 s
    h.advance(1 * S)
    assert h.statuses() == ["firing"] and len(h.sent[0].alerts) == 1
    h.now += 10 * S
    h.signals(sig(device="sw1", name="FanFailed"))  # joins the same site+device group
    h.advance(200 * S)
    assert len(h.sent) == 1  # within group_interval: waits
    h.advance(100 * S)
    assert len(h.sent) == 2 and {a.labels for a in h.sent[1].alerts} == {
        sig(device="sw1").labels,
        sig(device="sw1", name="FanFailed").labels,
    }
    h.advance(4 * 3600 * S, tick_ms=60 * S)
    assert len(h.sent) == 3 and h.sent[2].status == "firing"  # repeat_interval


def test_different_devices_group_apart_and_group_wait_zero_notifies_at_once() -> None:
    h = Harness(config(timers=Timers(group_wait_s=0, group_interval_s=60, repeat_interval_s=3600)))
    h.signals(sig(device="sw1"), sig(device="sw2"))
    keys = sorted(n.group_key for n in h.sent)
    assert keys == ['noc:{device="sw1",site="dc1"}', 'noc:{device="sw2",site="dc1"}']


def test_an_end_resolves_and_the_resolve_is_notified() -> None:
    h = Harness()
    h.signals(sig())
    h.advance(30 * S)
    h.now += 5 * S
    h.signals(sig(firing=False, ts=h.now))
    h.advance(300 * S)
    assert h.statuses() == ["firing", "resolved"]
    assert h.sent[1].alerts[0].ends_at_ms == T0 + 35 * S
    assert h.core.engine.open == {} and h.core.grouper.groups == {}


def test_an_alert_that_ended_before_its_group_wait_is_never_notified() -> None:
    h = Harness()
    h.signals(sig())
    h.now += 5 * S
    h.signals(sig(firing=False, ts=h.now))
    h.advance(600 * S)
    assert h.sent == []


def test_ten_transitions_in_ten_minutes_are_one_notification_and_the_alert_is_flapping() -> None:
    h = Harness(config(flap=FlapConfig(transitions=4, window_s=600)))
    firing = True
    h.signals(sig(firing=True, ts=h.now))
    for _ in range(10):  # a flip every minute for ten minutes
        h.advance(MIN)
        firing = not firing
        h.signals(sig(firing=firing, ts=h.now))
    assert len(h.sent) == 1, h.statuses()
    (alert,) = h.core.engine.by_id.values()
    assert alert.flapping and alert.is_open and alert.count == 6
    # Calm: no flips for a window; it ends as its condition is (firing=True after an even flip count).
    h.advance(700 * S)
    assert not alert.flapping and alert.is_open and len(h.sent) == 1


def test_a_flapping_alert_whose_condition_ended_resolves_once_it_calms_down() -> None:
    h = Harness(config(flap=FlapConfig(transitions=4, window_s=600)))
    h.signals(sig(True))
    for firing in (False, True, False, True, False):
        h.advance(MIN)
        h.signals(sig(firing, ts=h.now))
    h.advance(15 * MIN)
    assert h.statuses() == ["firing", "resolved"]


def test_an_offline_agent_inhibits_creation_but_not_resolution() -> None:
    h = Harness()
    h.signals(sig(device="sw1"))
    h.core.engine.set_offline("dc1/rack12", ("sw1", "sw2"))
    h.signals(sig(device="sw2"))  # would be new: inhibited
    offline_labels = labels_of({"alertname": "AgentOffline", "agent": "dc1/rack12", "site": "dc1"})
    offline = Signal(offline_labels, True, h.now)
    h.signals(offline)
    assert sorted(a.label("alertname") + a.label("device") for a in h.core.engine.open.values()) == [
        "AgentOffline",
        "LinkDownsw1",
    ]
    h.signals(sig(firing=False, device="sw1", ts=h.now))  # resolution still applies
    assert [a.label("alertname") for a in h.core.engine.open.values()] == ["AgentOffline"]
    assert h.core.engine.stats["inhibited"] == 1


def _window(
    kind: WindowKind, start: int, end: int | None, matchers: str = 'device="sw1"', **kw: object
) -> Window:
    return Window(
        new_id(start),
        kind,
        parse_matchers([matchers]),
        start,
        end,
        "noc",
        start,
        **kw,  # type: ignore[arg-type]
    )


def test_alerts_inside_a_maintenance_window_are_suppressed_and_one_still_firing_notifies_once_after() -> None:
    h = Harness()
    h.act(h.core.engine.set_windows([_window(WindowKind.MAINTENANCE, T0, T0 + 10 * MIN)], h.now))
    h.signals(sig(device="sw1"), sig(device="sw2"))
    (inside,) = [a for a in h.core.engine.open.values() if a.label("device") == "sw1"]
    assert inside.status is AlertStatus.SUPPRESSED
    h.advance(9 * MIN)
    assert [n.group_key for n in h.sent] == ['noc:{device="sw2",site="dc1"}']
    h.advance(2 * MIN)
    assert inside.status is AlertStatus.FIRING
    h.advance(10 * MIN)
    sw1 = [n for n in h.sent if "sw1" in n.group_key]
    assert len(sw1) == 1 and sw1[0].status == "firing"


def test_a_recurring_maintenance_window_suppresses_each_occurrence() -> None:
    # Every day at the hour of T0 for 30 minutes.
    w = _window(WindowKind.MAINTENANCE, T0, None, rrule="FREQ=DAILY", duration_ms=30 * MIN)
    assert w.active_at(T0 + 10 * MIN) and not w.active_at(T0 + 40 * MIN)
    assert w.active_at(T0 + 86_400_000 + 5 * MIN)
    assert w.next_boundary(T0 + 40 * MIN) == T0 + 86_400_000
    with pytest.raises(WindowError):
        _window(WindowKind.MAINTENANCE, T0, None, rrule="FREQ=SECONDLY", duration_ms=MIN)
    with pytest.raises(WindowError):
        _window(WindowKind.SILENCE, T0, T0 - 1)


def test_a_late_onset_whose_end_follows_in_the_replay_never_notifies_but_is_recorded() -> None:
    h = Harness(config(timers=Timers(group_wait_s=0, group_interval_s=60, repeat_interval_s=3600)))
    h.now = T0 + 30 * MIN  # the agent was offline; its spool replays now
    h.signals(sig(ts=T0 + 5 * MIN))
    h.advance(2 * S)
    h.signals(sig(firing=False, ts=T0 + 9 * MIN))
    h.advance(MIN)
    assert h.sent == []
    (alert,) = h.seen.values()  # recorded (persisted from the step's changes), with its own times
    assert (alert.starts_ms, alert.ends_ms) == (T0 + 5 * MIN, T0 + 9 * MIN)
    assert alert.status is AlertStatus.RESOLVED


def test_a_late_onset_still_active_after_the_settle_time_notifies() -> None:
    h = Harness(config(timers=Timers(group_wait_s=0, group_interval_s=60, repeat_interval_s=3600)))
    h.now = T0 + 30 * MIN
    h.signals(sig(ts=T0 + 5 * MIN))
    h.advance(11 * S)
    assert h.statuses() == ["firing"] and h.sent[0].alerts[0].starts_at_ms == T0 + 5 * MIN


def test_an_end_replayed_before_its_onset_records_the_alert_as_over() -> None:
    h = Harness(config(timers=Timers(group_wait_s=0, group_interval_s=60, repeat_interval_s=3600)))
    h.signals(sig(firing=False, ts=T0 + 2 * S))
    h.signals(sig(ts=T0 + S))
    assert h.core.engine.open == {} and h.sent == []


def test_acknowledged_alerts_do_not_repeat_but_their_resolve_is_delivered() -> None:
    h = Harness()
    h.signals(sig())
    h.advance(30 * S)
    (alert,) = h.core.engine.open.values()
    h.act([h.core.engine.acknowledge(alert.id, "ana", h.now)])
    assert alert.status is AlertStatus.ACKNOWLEDGED and alert.ack_by == "ana"
    h.advance(5 * 3600 * S, tick_ms=60 * S)
    assert h.statuses() == ["firing"]
    h.signals(sig(firing=False, ts=h.now))
    h.advance(300 * S)
    assert h.statuses() == ["firing", "resolved"]


@pytest.mark.parametrize(
    ("silenced", "inhibited", "maintenance", "acked"), list(itertools.product([False, True], repeat=4))
)
def test_a_notified_alert_always_gets_its_resolve_delivered(
    silenced: bool, inhibited: bool, maintenance: bool, acked: bool
) -> None:
    h = Harness()
    h.signals(sig())
    h.advance(30 * S)
    assert h.statuses() == ["firing"]
    (alert,) = h.core.engine.open.values()
    windows = []
    if silenced:
        windows.append(_window(WindowKind.SILENCE, h.now, h.now + 3600 * S))
    if maintenance:
        windows.append(_window(WindowKind.MAINTENANCE, h.now, h.now + 3600 * S))
    h.act(h.core.engine.set_windows(windows, h.now))
    if inhibited:
        h.core.engine.set_offline("dc1/rack12", ("sw1",))
    if acked:
        h.act([h.core.engine.acknowledge(alert.id, "ana", h.now)])
    h.advance(10 * MIN)
    h.signals(sig(firing=False, ts=h.now))
    h.advance(10 * MIN)
    assert h.statuses() == ["firing", "resolved"]
    assert h.sent[1].alerts[0].id == alert.id and h.sent[1].alerts[0].status == "resolved"


def test_routes_send_by_matchers_and_first_match_wins_unless_continue() -> None:
    cfg = config(
        routes=[
            RouteConfig(matchers=('severity="critical"',), receiver="pager", **{"continue": True}),
            RouteConfig(matchers=('alertname=~"Link.*"',), receiver="noc"),
            RouteConfig(receiver="catchall"),
        ],
        timers=Timers(group_wait_s=0, group_interval_s=60, repeat_interval_s=3600),
    )
    h = Harness(cfg)
    h.signals(sig(severity="critical"))
    h.signals(sig(name="FanFailed", device="sw9"))
    assert sorted(n.receiver for n in h.sent) == ["catchall", "noc", "pager"]


def test_incidents_gather_a_devices_alerts_and_resolve_with_the_last() -> None:
    h = Harness()
    s1 = h.signals(sig(name="LinkDown"))
    h.signals(sig(name="FanFailed"))
    h.signals(sig(name="LinkDown", device="sw2"))
    incidents = h.core.incidents
    assert len(incidents.open) == 2
    (inc,) = [i for i in incidents.open.values() if ("device", "sw1") in i.labels]
    assert len(inc.alert_ids) == 2 and inc.title == "2 alerts on device=sw1, site=dc1"
    assert [e.kind for e in s1.timeline] == ["state", "alert_joined"]
    step = h.signals(sig(False, name="LinkDown", ts=h.now), sig(False, name="FanFailed", ts=h.now))
    assert inc.status.value == "resolved" and inc.resolved_ms == h.now
    assert [e.kind for e in step.timeline] == ["alert_resolved", "alert_resolved", "state"]


def test_restart_restores_the_notification_log_so_nothing_is_paged_twice_and_no_resolve_is_lost() -> None:
    h = Harness()
    h.signals(sig(device="sw1"), sig(device="sw2"))
    h.advance(30 * S)
    assert len(h.sent) == 2
    # Persisted state, as service.py writes it:
    alerts = list(h.core.engine.by_id.values())
    entries = [
        LogEntry(g.receiver, g.key, g.notified_firing, g.last_notify_ms or 0)
        for g in h.core.grouper.groups.values()
    ]
    fresh = Harness()
    fresh.now = h.now + 60 * S
    fresh.core.load(alerts, [], [], entries, fresh.now)
    fresh.advance(10 * MIN)
    assert fresh.sent == []  # nothing re-paged
    fresh.signals(sig(firing=False, device="sw1", ts=fresh.now))
    fresh.advance(10 * MIN)
    assert fresh.statuses() == ["resolved"]
