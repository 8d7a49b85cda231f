"""The `ws:` section of hub.yaml: how WebSocket streams buffer, coalesce and guard their clients."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WsConfig(BaseModel):
    """WebSocket streams (`GET /ws`, `/ws/alerts`); the defaults keep a 30 s disconnect lossless well
    past the rates the bench drives (10 onsets/s and their alerts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Events arriving within one tick go to a client as one frame (a storm is a frame per tick).
    tick_s: float = Field(default=0.1, gt=0, le=5)
    # Resume history: the last `history` events, none older than `history_s`. A client reconnecting
    # with an older last_event_id gets a `reset` (reload) instead. A process also replays this long
    # back in the bus stream when it starts (nats), so its history matches its older peers'.
    history: int = Field(default=20_000, ge=100, le=1_000_000)
    history_s: float = Field(default=600.0, ge=30, le=86_400)
    # Frames queued for one client; a client this far behind is disconnected (close 4008), never
    # allowed to hold the others back or the hub's memory.
    client_queue: int = Field(default=64, ge=2, le=10_000)
    # A frame the client has not taken within this long counts as a slow client too.
    send_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Clients at once per process; beyond it a connection is closed at once (1013, try again later).
    max_clients: int = Field(default=5000, ge=1, le=100_000)
    # A connection must authenticate (and subscribe) within this long.
    auth_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # How often an open connection's token is checked again (revoked tokens are cut within this).
    recheck_s: float = Field(default=10.0, ge=1, le=3600)
