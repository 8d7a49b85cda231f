"""Bus configuration: one frozen model per implementation, picked by `kind` (built by `hub.bus.factory`).

In the hub's YAML:

    bus:
      kind: memory              # default: one hub process, queues in memory
      queue_size: 10000         # per (topic, group); full queues drop (counted) unless block: true
    # or, for `api` + N `worker` processes:
    bus:
      kind: nats
      servers: [tls://nats:4222]
      max_age: P1D
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NAME = r"^[A-Za-z0-9_-]+$"


class _Delivery(BaseModel):
    """What both implementations share: how many handlers run at once and how failures are retried."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Handler calls in flight per (topic, group) subscription; 1 keeps each queue in publish order.
    concurrency: int = Field(default=1, ge=1, le=1000)
    # Delay before a failed message is tried again; doubled per attempt up to `retry_backoff_max_s`.
    retry_backoff_s: float = Field(default=0.2, ge=0, le=60)
    retry_backoff_max_s: float = Field(default=10.0, ge=0, le=3600)


class MemoryBusConfig(_Delivery):
    """The embedded default: one bounded asyncio queue per (topic, group) in this process."""

    kind: Literal["memory"] = "memory"
    # A failing handler is called again this many times, then the message is dropped and counted dead.
    retries: int = Field(default=4, ge=0, le=100)
    queue_size: int = Field(default=10_000, ge=1)
    # False: a full queue drops the message (counted per topic/group) and publish returns at once.
    # True: publish waits for space, slowing the publisher to the slowest group.
    block: bool = False
    # aclose() lets the consumers finish what is queued for this long, then cancels them.
    drain_timeout_s: float = Field(default=5.0, ge=0, le=300)


class NatsBusConfig(_Delivery):
    """NATS JetStream, shared by several hub processes; connects with the hub's client certificate."""

    kind: Literal["nats"] = "nats"
    servers: tuple[str, ...] = Field(default=("tls://127.0.0.1:4222",), min_length=1)
    # Name nats-server's certificate carries (defaults to the URL's host).
    server_name: str | None = None
    stream: str = Field(default="OUTPOST_BUS", pattern=_NAME)
    subject_prefix: str = Field(default="outpost.bus", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    # Limits-based retention: messages are kept this long / up to this size whether consumed or not.
    max_age: timedelta = timedelta(days=1)
    max_bytes: int = Field(default=1 << 30, gt=0)
    # A re-publish of the same message id within this window is stored once (Nats-Msg-Id).
    duplicate_window: timedelta = timedelta(minutes=2)
    # A message fetched by a process that died (or a handler slower than this) is redelivered.
    ack_wait_s: float = Field(default=30.0, gt=0)
    # Deliveries of one message at most (the first one included); then it is terminated, counted dead.
    max_deliver: int = Field(default=5, ge=1, le=100)
    # publish() raises BusUnavailable when the stream has not confirmed a message within this long.
    publish_timeout_s: float = Field(default=5.0, gt=0, le=300)
    # Where a group's consumer starts when it is first created: every retained message, or new ones.
    new_group_start: Literal["all", "new"] = "all"

    @model_validator(mode="after")
    def _check_windows(self) -> NatsBusConfig:
        if self.max_age <= timedelta(0) or self.duplicate_window <= timedelta(0):
            raise ValueError("max_age and duplicate_window must be positive")
        if self.duplicate_window > self.max_age:
            raise ValueError("duplicate_window must not exceed max_age (JetStream refuses the stream)")
        return self


BusConfig = Annotated[MemoryBusConfig | NatsBusConfig, Field(discriminator="kind")]
