"""The WebSocket stream protocol: what a client may send, the topics and filters, and the event frames.

A client authenticates (`{"type": "auth", "token": ...}` as its first frame, or the subprotocols
`outpost.v1` + `bearer.<token>` in the handshake), then subscribes once:
`{"type": "subscribe", "topics": [...], "filters": {"severity": [...], "labels": {...}},
"last_event_id": N}`. Events come as `{"type": "events", "events": [{"id", "topic", "kind", "data"}]}`,
one frame per tick however many events the tick carried. Every field a client sends is bounded here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from hub.bus.messages import (
    AgentSeen,
    AlertsChanged,
    AnomalyReported,
    DeviceEvent,
    IncidentChanged,
    IncidentEnriched,
    LimitCrossed,
    Message,
)
from shared.errors import OutpostError

# Stream topics and the bus topics each carries.
TOPICS: dict[str, tuple[str, ...]] = {
    "alerts": (AlertsChanged.TOPIC,),
    "incidents": (IncidentChanged.TOPIC, IncidentEnriched.TOPIC),
    "anomalies": (AnomalyReported.TOPIC, LimitCrossed.TOPIC),
    "events": (DeviceEvent.TOPIC,),
    "agents": (AgentSeen.TOPIC,),
}
STREAM_TOPIC = {bus: topic for topic, buses in TOPICS.items() for bus in buses}
PROTOCOL = "outpost.v1"
BEARER_PREFIX = "bearer."

MAX_FRAME_CHARS = 8192  # anything a client sends; bigger closes the connection (4400)
MAX_TOKEN_CHARS = 4096
MAX_FILTER_VALUES = 16
MAX_LABEL_CHARS = 256
MAX_EVENT_ID = 2**63 - 1


class CloseCode(IntEnum):
    """Why the hub closed a stream (the close frame's reason says more, never a token)."""

    GOING_AWAY = 1001  # the hub is stopping: reconnect (with last_event_id) to any replica
    INTERNAL = 1011  # the hub failed to serve the stream (its state database away): retry
    TRY_LATER = 1013  # this process serves `ws.max_clients` already
    BAD_REQUEST = 4400  # a frame that is not a valid request
    UNAUTHORIZED = 4401  # no valid token in time, or the token expired or was revoked
    FORBIDDEN = 4403  # the token lacks the scope of a topic it subscribed to
    TOO_SLOW = 4408  # the client fell `ws.client_queue` frames behind


class StreamRequestError(OutpostError):
    """Raised when a client's frame is not a valid request; the stream is closed with `code`."""

    def __init__(self, message: str, code: CloseCode = CloseCode.BAD_REQUEST) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Filter:
    """Keeps events of the given severities carrying all the given labels (exact values); an event
    without a severity (incidents, agents, limits) never matches a severity filter, one without labels
    never matches a label filter. Empty: everything."""

    severities: frozenset[str] = frozenset()
    labels: frozenset[tuple[str, str]] = frozenset()

    def matches(self, event: Event) -> bool:
        if self.severities and event.severity not in self.severities:
            return False
        return self.labels <= event.labels


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one client asked for; clients with equal `topics` and `filter` share each tick's frame."""

    topics: frozenset[str]
    filter: Filter
    last_event_id: int | None = None

    def wants(self, event: Event) -> bool:
        return event.topic in self.topics and self.filter.matches(event)


@dataclass(frozen=True, slots=True)
class Event:
    """One streamed event, encoded once for every client that gets it."""

    id: int  # the bus tail's sequence: the same in every hub process
    topic: str
    severity: str | None
    labels: frozenset[tuple[str, str]]  # what label filters match against
    json: str


# The event kind of one alert's change, as clients have always seen it (the bus carries them by step).
ALERT_CHANGED = "alert.changed"


def events_of(seq: int, msg: Message, alerts: Mapping[str, dict[str, Any]]) -> list[Event]:
    """The stream events of bus message `msg`, all numbered `seq`: one per alert of an `AlertsChanged`
    (with the alert's current JSON from `alerts`, by id, under `alert`), one for any other message."""
    if isinstance(msg, AlertsChanged):
        return [_alert_event(seq, msg, i, alerts.get(alert_id)) for i, alert_id in enumerate(msg.alert_ids)]
    data = msg.to_json()
    del data["id"]  # the bus's key; clients resume from the event id
    labels: dict[str, str] = {}
    if isinstance(msg, AnomalyReported | LimitCrossed):
        labels = {**dict(msg.labels), "agent": msg.agent, "device": msg.device, "metric": msg.metric}
    elif isinstance(msg, DeviceEvent):
        labels = {**dict(msg.attributes), "agent": msg.agent, "device": msg.device, "kind": msg.kind}
    elif isinstance(msg, AgentSeen):
        labels = {"agent": msg.agent}
    severity = getattr(msg, "severity", None)
    return [_event(seq, STREAM_TOPIC[msg.TOPIC], msg.TOPIC, severity, labels, data)]


def _alert_event(seq: int, msg: AlertsChanged, i: int, alert: dict[str, Any] | None) -> Event:
    data: dict[str, Any] = {
        "alert_id": msg.alert_ids[i],
        "fingerprint": msg.fingerprints[i],
        "status": msg.statuses[i],
        "severity": msg.severities[i],
        "change": msg.changes[i],
        "ts_ms": msg.ts_ms,
    }
    labels: dict[str, str] = {}
    if alert is not None:
        data["alert"] = alert
        labels = dict(alert.get("labels", {}))
    return _event(seq, STREAM_TOPIC[msg.TOPIC], ALERT_CHANGED, msg.severities[i], labels, data)


def _event(
    seq: int, topic: str, kind: str, severity: str | None, labels: dict[str, str], data: dict[str, Any]
) -> Event:
    body = {"id": seq, "topic": topic, "kind": kind, "data": data}
    return Event(seq, topic, severity, frozenset(labels.items()), _dumps(body))


def events_frame(events: list[Event]) -> str:
    """One `events` frame; the events' JSON is spliced in, never encoded again."""
    return '{"type":"events","events":[' + ",".join(e.json for e in events) + "]}"


def reply(kind: str, **fields: Any) -> str:
    """A control frame (`subscribed`, `reset`, `pong`, `error`)."""
    return _dumps({"type": kind, **fields})


def parse_frame(text: str | bytes) -> dict[str, Any]:
    """The JSON object of a client frame with its `type`.

    Raises:
        StreamRequestError: too long, binary, not a JSON object, or without a string `type`.
    """
    if not isinstance(text, str):
        raise StreamRequestError("binary frames are not part of the protocol")
    if len(text) > MAX_FRAME_CHARS:
        raise StreamRequestError(f"frame of {len(text)} characters, more than {MAX_FRAME_CHARS}")
    try:
        obj = json.loads(text)
    except ValueError:
        raise StreamRequestError("frame is not JSON") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise StreamRequestError('frame must be a JSON object with a string "type"')
    return obj


def auth_token(obj: dict[str, Any]) -> str:
    """The token of an `auth` frame.

    Raises:
        StreamRequestError: (4401) not an auth frame, or no usable token in it.
    """
    token = obj.get("token")
    if obj["type"] != "auth" or set(obj) != {"type", "token"}:
        raise StreamRequestError('expected {"type": "auth", "token": ...} first', CloseCode.UNAUTHORIZED)
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise StreamRequestError("token must be a non-empty string", CloseCode.UNAUTHORIZED)
    return token


def subprotocol_token(offered: list[str]) -> str | None:
    """The token of a `bearer.<token>` subprotocol offered beside `outpost.v1`, if any."""
    if PROTOCOL not in offered:
        return None
    for p in offered:
        if p.startswith(BEARER_PREFIX) and 0 < len(p) - len(BEARER_PREFIX) <= MAX_TOKEN_CHARS:
            return p[len(BEARER_PREFIX) :]
    return None


def subscription(obj: dict[str, Any], allowed: frozenset[str]) -> Subscription:
    """The subscription a `subscribe` frame asks for; `topics` defaults to `allowed` when that is one
    topic (`/ws/alerts`).

    Raises:
        StreamRequestError: not a subscribe frame, unknown keys, topics outside `allowed`, filters or
            last_event_id out of bounds.
    """
    if obj["type"] != "subscribe":
        raise StreamRequestError(f'expected a "subscribe" frame, got {obj["type"][:32]!r}')
    extra = sorted(set(obj) - {"type", "topics", "filters", "last_event_id"})
    if extra:
        raise StreamRequestError(f"unknown fields {extra[:5]}")
    raw_topics = obj.get("topics", sorted(allowed) if len(allowed) == 1 else None)
    if not isinstance(raw_topics, list) or not 0 < len(raw_topics) <= len(TOPICS):
        raise StreamRequestError(f"topics: a list of 1..{len(TOPICS)} of {sorted(allowed)}")
    bad = [t for t in raw_topics if t not in allowed]
    if bad:
        raise StreamRequestError(f"topics: {str(bad[0])[:32]!r} is not one of {sorted(allowed)}")
    last = obj.get("last_event_id")
    if last is not None and (
        isinstance(last, bool) or not isinstance(last, int) or not 0 <= last <= MAX_EVENT_ID
    ):
        raise StreamRequestError("last_event_id: an integer event id or null")
    return Subscription(frozenset(raw_topics), _filter(obj.get("filters", {})), last)


def _filter(raw: Any) -> Filter:
    if not isinstance(raw, dict) or set(raw) - {"severity", "labels"}:
        raise StreamRequestError('filters: an object with "severity" and/or "labels"')
    sev = raw.get("severity", [])
    if not isinstance(sev, list) or len(sev) > MAX_FILTER_VALUES or not all(_short(s) for s in sev):
        raise StreamRequestError(f"filters.severity: up to {MAX_FILTER_VALUES} strings")
    labels = raw.get("labels", {})
    if (
        not isinstance(labels, dict)
        or len(labels) > MAX_FILTER_VALUES
        or not all(_short(k) and _short(v) for k, v in labels.items())
    ):
        raise StreamRequestError(f"filters.labels: up to {MAX_FILTER_VALUES} names with string values")
    return Filter(frozenset(sev), frozenset(labels.items()))


def _short(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_LABEL_CHARS


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
