"""The SNMP trap receiver: UDP notifications (v1/v2c communities, v3 users) become `snmp.trap` events.

The runtime wires `sink` to the batcher; each trap arrives as a CollectResult holding one Event from
the device that sent it: the configured device whose `address` is the sender's address, else the
address itself (an unconfigured sender, or an address several devices share, such as one simulator
serving many communities: naming one of them would be a guess). The address is always kept in the
`source_address` attribute. Addresses are compared literally: a device configured by host name is not
resolved, so its traps carry the sender's IP address. v1 traps reach us already translated to v2c
form (RFC 3584), so every event carries `trap_oid`. Unknown communities/users are dropped by the SNMP
engine itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from agent.collect.snmp.config import TrapConfig
from agent.collect.snmp.session import Trap, TrapListener, oid_text
from shared.clock import Clock, SystemClock
from shared.logging import UpDown
from shared.model import CollectResult, Event, Severity

log = logging.getLogger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
# SNMPv2-MIB standard traps: what they are called and how much they matter.
_STANDARD = {
    "1.3.6.1.6.3.1.1.5.1": ("coldStart", Severity.WARNING),
    "1.3.6.1.6.3.1.1.5.2": ("warmStart", Severity.WARNING),
    "1.3.6.1.6.3.1.1.5.3": ("linkDown", Severity.WARNING),
    "1.3.6.1.6.3.1.1.5.4": ("linkUp", Severity.INFO),
    "1.3.6.1.6.3.1.1.5.5": ("authenticationFailure", Severity.WARNING),
}
_MAX_ATTRIBUTES = 32


def trap_sources(devices: Iterable[object]) -> dict[str, str]:
    """Sender address -> device name for the configured devices that have an `address` (SNMP ones).

    An address that more than one device uses maps to none of them.
    """
    names: dict[str, list[str]] = {}
    for d in devices:
        address, name = getattr(d, "address", None), getattr(d, "name", None)
        if isinstance(address, str) and isinstance(name, str):
            names.setdefault(address.strip(), []).append(name)
    return {address: found[0] for address, found in names.items() if len(found) == 1}


@dataclass
class TrapStats:
    received: int = 0
    sink_failures: int = 0


class TrapReceiver:
    """Listens on `config.listen` once started; `port` is the bound port (useful with `:0`).

    `devices` maps sender addresses to device names (`trap_sources(config.devices)`).
    """

    def __init__(
        self,
        config: TrapConfig,
        sink: Callable[[CollectResult], None],
        clock: Clock | None = None,
        devices: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._sink = sink
        self._devices = dict(devices or {})
        self._clock = clock or SystemClock()
        self._sink_health = UpDown(log, "trap sink", self._clock)
        self._listener: TrapListener | None = None
        self.stats = TrapStats()

    @property
    def port(self) -> int:
        return self._listener.port if self._listener else 0

    async def start(self) -> None:
        if not self._config.enabled or self._listener is not None:
            return
        self._listener = TrapListener(self._config, self._on_trap)
        await self._listener.start()
        log.info(
            "SNMP trap receiver listening on %s", self._config.listen.rpartition(":")[0] + f":{self.port}"
        )

    def _on_trap(self, trap: Trap) -> None:
        self.stats.received += 1
        values = {oid_text(vb.oid): vb.value for vb in trap.var_binds}
        trap_oid = str(values.pop(SNMP_TRAP_OID, ""))
        values.pop(SYS_UPTIME, None)
        name, severity = _STANDARD.get(trap_oid, (trap_oid or "unknown", Severity.INFO))
        attributes: dict[str, str] = {}
        for oid, value in list(values.items())[:_MAX_ATTRIBUTES]:
            attributes[oid] = str(value)[:256]
        attributes |= {"trap_oid": trap_oid, "version": trap.version, "source_address": trap.source}
        device = self._devices.get(trap.source, trap.source)
        event = Event.of(self._clock.now_ms(), "snmp.trap", severity, device, name, attributes)
        try:
            self._sink(CollectResult(device, events=[event]))
        except Exception as exc:  # a sink bug must not kill the receiver; counted, logged on change
            self.stats.sink_failures += 1
            self._sink_health.down(f"{type(exc).__name__}: {exc}", logging.ERROR, exc_info=True)
        else:
            self._sink_health.up()

    async def aclose(self) -> None:
        if self._listener is not None:
            await self._listener.aclose()
            self._listener = None
