"""Errors of the bus package: bad messages are permanent, an unreachable broker is transient."""

from __future__ import annotations

from shared.errors import OutpostError, TransientError


class BusError(OutpostError):
    """Base of the bus's errors; raised as such when the bus is used out of order (subscribe after
    `start()`, a nats bus built without the hub's client certificate)."""


class MessageError(BusError):
    """Raised when a message cannot be built, encoded or decoded: a wrong field type, a duplicate label,
    JSON that is not an object of exactly the message's fields. Permanent: the same bytes fail again, so
    the bus counts (`decode_errors`) and drops them."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"bus message {topic!r}: {reason}")
        self.topic = topic
        self.reason = reason


class UnknownTopic(MessageError):
    """Raised when a topic is not in `hub.bus.messages.MESSAGES` (publish, subscribe or decode)."""

    def __init__(self, topic: str) -> None:
        super().__init__(topic, "unknown topic")


class BusClosed(BusError):
    """Raised by `publish` after `aclose()`: stop the publishers before the bus."""


class BusUnavailable(BusError, TransientError):
    """Raised by `publish` when the broker did not confirm the message within the publish timeout; the
    message may or may not be stored, so a retry with the same id is safe (the broker dedups by id)."""

    permanent = False

    def __init__(self, topic: str, reason: str) -> None:
        TransientError.__init__(self, f"bus publish to {topic!r} not confirmed: {reason}", 1.0)
        self.topic = topic
        self.reason = reason
