"""Value types the alerts engine hands to notify: one alert as a receiver sees it, and one notification.

A notification is a snapshot of one alert group for one receiver (Alertmanager's model): it carries the
group's current alerts, so a later notification for the same group supersedes what an earlier one said.
Both types round-trip through JSON, which is how the outbox keeps them across a hub restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson

Status = Literal["firing", "resolved"]
Pairs = tuple[tuple[str, str], ...]
"""Labels or annotations as sorted (name, value) pairs: immutable, hashable, one order for everyone."""

_STATUSES = ("firing", "resolved")
PAYLOAD_VERSION = 1


def pairs(mapping: Mapping[str, str] | Iterable[tuple[str, str]]) -> Pairs:
    """Sorted (name, value) pairs from a mapping or from pairs in any order.

    Raises:
        ValueError: a name appears twice, or a name or value is not a string.
    """
    if type(mapping) is tuple and _canonical(mapping):
        return mapping  # the engine's labels already are: every alert of every notification
    items = list(mapping.items()) if isinstance(mapping, Mapping) else list(mapping)
    for item in items:
        if len(item) != 2 or not all(isinstance(s, str) for s in item):
            raise ValueError(f"labels and annotations are (str, str) pairs, got {item!r}")
    out = tuple(sorted((str(k), str(v)) for k, v in items))
    names = [k for k, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate label names in {names}")
    return out


def _canonical(items: tuple[Any, ...]) -> bool:
    """Already (str, str) pairs with names strictly increasing: what `pairs` would return as it is."""
    previous = None
    for item in items:
        if type(item) is not tuple or len(item) != 2:
            return False
        name, value = item
        if type(name) is not str or type(value) is not str or (previous is not None and name <= previous):
            return False
        previous = name
    return True


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert in a notification. `ends_at_ms` is set once the alert resolved (or when it will end)."""

    id: str
    fingerprint: str
    status: Status
    severity: str
    labels: Pairs
    annotations: Pairs
    starts_at_ms: int
    ends_at_ms: int | None = None
    generator_url: str = ""

    def __post_init__(self) -> None:
        # Callers may pass dicts: normalise here so equality, hashing and JSON never depend on order.
        object.__setattr__(self, "labels", pairs(self.labels))
        object.__setattr__(self, "annotations", pairs(self.annotations))
        if self.status not in _STATUSES:
            raise ValueError(f"alert status must be firing or resolved, got {self.status!r}")

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def annotation_map(self) -> dict[str, str]:
        return dict(self.annotations)

    def routing_labels(self) -> dict[str, str]:
        """Labels as receivers get them: `severity` is added when the labels lack it, so an existing
        Alertmanager route on `severity` works without the engine having to copy it into the labels."""
        out = dict(self.labels)
        if self.severity and "severity" not in out:
            out["severity"] = self.severity
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "severity": self.severity,
            "labels": [list(p) for p in self.labels],
            "annotations": [list(p) for p in self.annotations],
            "starts_at_ms": self.starts_at_ms,
            "ends_at_ms": self.ends_at_ms,
            "generator_url": self.generator_url,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlertView:
        ends = d.get("ends_at_ms")
        return cls(
            id=str(d["id"]),
            fingerprint=str(d["fingerprint"]),
            status=cast(Status, d["status"]),
            severity=str(d["severity"]),
            labels=pairs([(str(k), str(v)) for k, v in d["labels"]]),
            annotations=pairs([(str(k), str(v)) for k, v in d["annotations"]]),
            starts_at_ms=int(d["starts_at_ms"]),
            ends_at_ms=None if ends is None else int(ends),
            generator_url=str(d.get("generator_url", "")),
        )


def group_status(alerts: tuple[AlertView, ...]) -> Status:
    """`resolved` exactly when every alert in the group is resolved (Alertmanager's rule)."""
    return "resolved" if all(a.status == "resolved" for a in alerts) else "firing"


@dataclass(frozen=True, slots=True)
class Notification:
    """What one receiver is told about one alert group.

    `id` is the caller's idempotency key: submitting the same (receiver, id) twice queues it once, and
    receivers get it as `Idempotency-Key` so they can drop a re-send after a hub crash.
    `status` must agree with the alerts (`group_status`); `Notification.of` computes it.
    """

    id: str
    receiver: str
    group_key: str
    group_labels: Pairs
    status: Status
    alerts: tuple[AlertView, ...]
    created_ms: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_labels", pairs(self.group_labels))
        object.__setattr__(self, "alerts", tuple(self.alerts))
        for what, value, limit in (("id", self.id, 255), ("receiver", self.receiver, 200)):
            if not value or len(value) > limit or "\x00" in value:
                raise ValueError(f"a notification's {what} must be 1 to {limit} characters, without NUL")
        if not self.alerts:
            raise ValueError(f"notification {self.id!r} has no alerts")
        if self.status != group_status(self.alerts):
            raise ValueError(
                f"notification {self.id!r} status {self.status!r} disagrees with its alerts: "
                "it is resolved exactly when every alert is resolved"
            )

    @classmethod
    def of(
        cls,
        id: str,
        receiver: str,
        group_key: str,
        group_labels: Mapping[str, str] | Pairs,
        alerts: tuple[AlertView, ...],
        created_ms: int,
    ) -> Notification:
        """A notification whose status is derived from its alerts."""
        return cls(id, receiver, group_key, pairs(group_labels), group_status(alerts), alerts, created_ms)

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "v": PAYLOAD_VERSION,
                "id": self.id,
                "receiver": self.receiver,
                "group_key": self.group_key,
                "group_labels": [list(p) for p in self.group_labels],
                "status": self.status,
                "alerts": [a.to_dict() for a in self.alerts],
                "created_ms": self.created_ms,
            },
            option=orjson.OPT_SORT_KEYS,
        ).decode()

    @classmethod
    def from_json(cls, text: str) -> Notification:
        """Parses what `to_json` wrote.

        Raises:
            ValueError: not JSON, an unknown payload version, or fields missing or of the wrong type.
        """
        try:
            d = orjson.loads(text)
            if not isinstance(d, dict):
                raise ValueError("notification payload is not a JSON object")
            if d.get("v") != PAYLOAD_VERSION:
                raise ValueError(f"unknown notification payload version {d.get('v')!r}")
            return cls(
                id=str(d["id"]),
                receiver=str(d["receiver"]),
                group_key=str(d["group_key"]),
                group_labels=pairs([(str(k), str(v)) for k, v in d["group_labels"]]),
                status=cast(Status, d["status"]),
                alerts=tuple(AlertView.from_dict(a) for a in d["alerts"]),
                created_ms=int(d["created_ms"]),
            )
        except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"bad notification payload: {type(exc).__name__}: {exc}") from None


ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time: what Alertmanager's webhooks put in `endsAt` of a firing alert with no known end."""


def rfc3339(ms: int) -> str:
    """Milliseconds since the epoch as RFC 3339 in UTC with millisecond precision (`...T12:00:00.250Z`)."""
    secs, rem = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rem:03d}Z"
