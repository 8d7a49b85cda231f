"""The stream protocol's pure parts: subprotocol tokens, subscriptions and how filters match events."""

from __future__ import annotations

import json

import pytest

from hub.bus.messages import AgentSeen, AlertsChanged, IncidentChanged, Message
from hub.notify.ws_protocol import (
    TOPICS,
    CloseCode,
    Event,
    Filter,
    StreamRequestError,
    events_frame,
    events_of,
    subprotocol_token,
    subscription,
)
from tests.ws.conftest import anomaly

pytestmark = pytest.mark.unit

ALL = frozenset(TOPICS)


def event_of(seq: int, msg: Message) -> Event:
    (event,) = events_of(seq, msg, {})
    return event


def test_a_bearer_subprotocol_counts_only_beside_the_protocol_name() -> None:
    assert subprotocol_token(["outpost.v1", "bearer.opk_abc"]) == "opk_abc"
    assert subprotocol_token(["bearer.opk_abc"]) is None
    assert subprotocol_token(["outpost.v1", "bearer."]) is None
    assert subprotocol_token(["outpost.v1"]) is None


def test_filters_need_the_field_and_the_exact_labels() -> None:
    crit_sw1 = event_of(7, anomaly(1, "critical", "sw1"))
    warn_sw2 = event_of(8, anomaly(2, "warning", "sw2"))
    incident = event_of(9, IncidentChanged.create(incident_id="i1", status="open", change="updated", ts_ms=1))
    seen = event_of(10, AgentSeen.create(
        agent="dc1/e1", ts_ms=1, heartbeat_s=10.0, version="1", spool_depth=0, cert_expiry_ms=0,
        targets_up=(), targets_down=(),
    ))  # fmt: skip
    severity = Filter(frozenset({"critical"}))
    labels = Filter(labels=frozenset({("device", "sw1"), ("ifName", "eth1")}))
    assert [severity.matches(e) for e in (crit_sw1, warn_sw2, incident, seen)] == [True, False, False, False]
    assert [labels.matches(e) for e in (crit_sw1, warn_sw2, incident)] == [True, False, False]
    assert Filter(labels=frozenset({("agent", "dc1/e1")})).matches(seen)
    assert all(Filter().matches(e) for e in (crit_sw1, warn_sw2, incident, seen))


def test_an_events_frame_is_json_with_the_events_in_order() -> None:
    frame = json.loads(events_frame([event_of(1, anomaly(1)), event_of(2, anomaly(2))]))
    assert frame["type"] == "events" and [e["id"] for e in frame["events"]] == [1, 2]
    assert "id" not in frame["events"][0]["data"]  # the bus key is not the event id


def test_each_alert_of_a_step_is_its_own_event_numbered_as_its_bus_message() -> None:
    (msg,) = AlertsChanged.of(
        [("a1", "f1", "firing", "critical", "created"), ("a2", "f2", "resolved", "warning", "resolved")], 7
    )
    alerts = {"a1": {"id": "a1", "labels": {"device": "sw1"}}}  # a2's details could not be read
    events = events_of(42, msg, alerts)
    assert [(e.id, e.topic, e.severity) for e in events] == [
        (42, "alerts", "critical"),
        (42, "alerts", "warning"),
    ]
    bodies = [json.loads(e.json) for e in events]
    assert [b["kind"] for b in bodies] == ["alert.changed", "alert.changed"]
    assert bodies[0]["data"] == {
        "alert_id": "a1",
        "fingerprint": "f1",
        "status": "firing",
        "severity": "critical",
        "change": "created",
        "ts_ms": 7,
        "alert": alerts["a1"],
    }
    assert "alert" not in bodies[1]["data"] and bodies[1]["data"]["change"] == "resolved"
    assert Filter(labels=frozenset({("device", "sw1")})).matches(events[0])
    assert not Filter(labels=frozenset({("device", "sw1")})).matches(events[1])


def test_a_subscription_is_validated_field_by_field() -> None:
    sub = subscription({"type": "subscribe", "topics": ["alerts"], "last_event_id": 5}, ALL)
    assert (sub.topics, sub.last_event_id, sub.filter) == (frozenset({"alerts"}), 5, Filter())
    assert subscription({"type": "subscribe"}, frozenset({"alerts"})).topics == {"alerts"}
    for bad in (
        {"type": "subscribe"},  # /ws needs topics
        {"type": "subscribe", "topics": ["alerts"] * 6},
        {"type": "subscribe", "topics": ["alerts"], "last_event_id": True},
        {"type": "subscribe", "topics": ["alerts"], "last_event_id": 2**63},
        {"type": "subscribe", "topics": ["alerts"], "filters": {"severity": ["x"] * 17}},
        {"type": "subscribe", "topics": ["alerts"], "filters": {"labels": {"k": "v" * 257}}},
        {"type": "subscribe", "topics": ["alerts"], "filters": {"other": 1}},
        {"type": "auth", "token": "t"},
    ):
        with pytest.raises(StreamRequestError) as err:
            subscription(bad, ALL)
        assert err.value.code == CloseCode.BAD_REQUEST
