"""WebSocket stream fixtures: the bus fixtures (a real nats-server, both bus kinds) shared with tests/bus."""

from __future__ import annotations

from tests.bus.conftest import bus_nats, make_bus

__all__ = ["bus_nats", "make_bus"]
