"""Delivers envelopes to NATS JetStream over mTLS; the only agent module that imports nats.

The same envelope bytes the gRPC transport pushes are published to `<prefix>.<site>.<agent>` with
`Nats-Msg-Id` = `<subject>:<batch id>`, so JetStream drops a re-sent batch inside its duplicate window and
the hub's store drops it after that. The subject is part of the id because JetStream dedups per stream,
not per subject: two agents whose boot epochs match (started in the same millisecond) would otherwise
have each other's batches acknowledged as duplicates and never stored. The subject comes from this
agent's own certificate; nats-server maps that certificate to a user allowed to publish to that one
subject only (hub/identity/nats_auth.py), so the hub can trust the subject as the agent's identity. A
JetStream ack means the stream stored the batch durably; the hub acknowledges it to JetStream only after
its own durable store write.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client

from agent.transport.base import DeliveryRejected
from shared import codec
from shared.errors import CodecError, TransientError
from shared.tls import identity_from_pem

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_CLOSE_TIMEOUT_S = 5.0


def subject_for(prefix: str, identity: str) -> str:
    """`<prefix>.<site>.<agent>` for an identity `site/agent`.

    Raises:
        ValueError: the identity is not `site/agent` with subject-safe names (letters, digits, `_`, `-`).
    """
    parts = identity.split("/")
    if len(parts) != 2 or not all(_TOKEN.match(p) for p in parts):
        raise ValueError(f"identity {identity!r} cannot name a NATS subject (want site/agent, [A-Za-z0-9_-])")
    return f"{prefix}.{parts[0]}.{parts[1]}"


class NatsTransport:
    """A JetStream publisher; connects lazily so a NATS outage at start-up is just a transient error."""

    def __init__(
        self,
        servers: tuple[str, ...],
        subject_prefix: str,
        *,
        ca_file: Path,
        cert_file: Path,
        key_file: Path,
        server_name: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._servers = list(servers)
        self._prefix = subject_prefix
        self._ca, self._cert, self._key = ca_file, cert_file, key_file
        self._server_name = server_name
        self._timeout = timeout_s
        self._nc: Client | None = None
        self.subject = subject_for(subject_prefix, identity_from_pem(cert_file.read_bytes()))

    def msg_id(self, batch_id: str) -> str:
        """The JetStream dedup key of a batch: unique per agent, the same for every re-send."""
        return f"{self.subject}:{batch_id}"

    async def start(self) -> None:
        return None  # connect on first send: the spool holds batches while NATS is away

    async def _connect(self) -> Client:
        if self._nc is not None and not self._nc.is_closed:
            return self._nc
        ctx = ssl.create_default_context(cafile=str(self._ca))
        ctx.load_cert_chain(str(self._cert), str(self._key))
        try:
            self._nc = await nats.connect(
                servers=self._servers,
                tls=ctx,
                tls_hostname=self._server_name,
                connect_timeout=self._timeout,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                error_cb=_ignore,
                disconnected_cb=_ignore_event,
                closed_cb=_ignore_event,
                reconnected_cb=_ignore_event,
            )
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            raise TransientError(f"NATS unreachable: {type(exc).__name__}: {exc}") from None
        return self._nc

    async def send(self, envelope: bytes) -> codec.PushResult:
        try:
            header = codec.peek(envelope)
        except CodecError as exc:
            raise DeliveryRejected(f"not an envelope: {exc}") from None
        nc = await self._connect()
        try:
            ack = await nc.jetstream().publish(
                self.subject,
                envelope,
                timeout=self._timeout,
                headers={"Nats-Msg-Id": self.msg_id(header.batch_id)},
            )
        except nats.errors.MaxPayloadError as exc:
            raise DeliveryRejected(f"envelope larger than the NATS max payload: {exc}") from None
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError) as exc:
            raise TransientError(f"NATS publish failed: {type(exc).__name__}: {exc}") from None
        duplicate = bool(ack.duplicate)
        return codec.PushResult(accepted_points=0 if duplicate else header.point_count, duplicate=duplicate)

    async def aclose(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            try:  # bounded: a client mid-reconnect can wait on close forever
                await asyncio.wait_for(nc.close(), _CLOSE_TIMEOUT_S)
            except (nats.errors.Error, OSError, TimeoutError):
                pass


async def _ignore(_exc: Exception) -> None:
    """nats-py logs every reconnect attempt by default; the deliverer already logs state changes once."""


async def _ignore_event() -> None:
    return None
