"""Builds the configured bus; beside the implementations so their config never imports them."""

from __future__ import annotations

from collections.abc import Callable

from hub.bus.base import Bus
from hub.bus.config import BusConfig, MemoryBusConfig, NatsBusConfig
from hub.bus.errors import BusError
from hub.bus.memory import MemoryBus
from hub.bus.nats import NatsBus
from hub.ingest.nats_consumer import ClientTls
from shared.clock import Clock


def _memory(config: BusConfig, _tls: ClientTls | None, clock: Clock | None) -> Bus:
    assert isinstance(config, MemoryBusConfig)
    return MemoryBus(config, clock)


def _nats(config: BusConfig, tls: ClientTls | None, _clock: Clock | None) -> Bus:
    assert isinstance(config, NatsBusConfig)
    if tls is None:
        raise BusError("bus kind nats needs the hub's NATS client certificate (tls=ClientTls(...))")
    return NatsBus(config, tls)


BUSES: dict[str, Callable[[BusConfig, ClientTls | None, Clock | None], Bus]] = {
    "memory": _memory,
    "nats": _nats,
}


def build_bus(config: BusConfig, tls: ClientTls | None = None, clock: Clock | None = None) -> Bus:
    """The bus `config.kind` names, not yet started.

    Args:
        tls: the hub's NATS client certificate and CA (the one `hub/ingest/nats_consumer.py` uses);
            required for `kind: nats`.
        clock: times the memory bus's retry backoff (tests pass a FakeClock).

    Raises:
        BusError: `kind: nats` without `tls`.
    """
    return BUSES[config.kind](config, tls, clock)
