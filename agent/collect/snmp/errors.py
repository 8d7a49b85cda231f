"""Errors raised by the SNMP session; each says whether retrying later can help."""

from __future__ import annotations

from shared.errors import OutpostError


class SnmpError(OutpostError):
    """Base of SNMP failures; carries the device name and, where known, the OID."""

    permanent = False

    def __init__(self, device: str, message: str, oid: str = "") -> None:
        super().__init__(f"{device}: {message}" + (f" (oid {oid})" if oid else ""))
        self.device = device
        self.oid = oid


class SnmpTimeout(SnmpError, TimeoutError):
    """Raised when the device did not answer a request within timeout x retries (transient).

    It is also a TimeoutError so the scheduler counts it in `collect_timeouts_total`.
    """


class SnmpEngineStale(SnmpError):
    """Raised when an SNMPv3 agent answers notInTimeWindow/unknownEngineID: it rebooted and our cached
    engine boots/time are stale. The session drops that target's engine cache and rediscovers."""


class SnmpAuthError(SnmpError):
    """Raised on wrong credentials (unknown user, wrong digest, bad community is silence): permanent."""

    permanent = True


class SnmpProtocolError(SnmpError):
    """Raised when the agent answers with an SNMP error status or an engine error we cannot recover from."""
