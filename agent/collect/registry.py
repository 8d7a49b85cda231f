"""The explicit registry of collector kinds; a device config's `kind:` picks one."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from agent.collect.base import Collector
from agent.collect.host import HostCollector, HostConfig
from agent.collect.redfish.collector import RedfishCollector
from agent.collect.redfish.config import RedfishConfig
from agent.collect.sequence import SequenceCollector, SequenceConfig
from agent.collect.snmp.collector import SnmpCollector
from agent.collect.snmp.config import SnmpConfig
from shared.clock import Clock

COLLECTORS: dict[str, tuple[type[BaseModel], Callable[..., Collector]]] = {
    "host": (HostConfig, HostCollector),
    "snmp": (SnmpConfig, SnmpCollector),
    "redfish": (RedfishConfig, RedfishCollector),
    "sequence": (SequenceConfig, SequenceCollector),
}


def build_collector(config: BaseModel, clock: Clock) -> Collector:
    """Instantiates the collector registered for `config.kind`."""
    kind = str(getattr(config, "kind", ""))
    _, factory = COLLECTORS[kind]
    return factory(config, clock=clock)
