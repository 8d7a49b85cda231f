"""The syslog receiver: UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425) listeners feeding LogRecords.

Every message is rate-limited per sender address, parsed (RFC 5424, else RFC 3164, else kept as text),
stamped with the device the agent knows for that address, and put on a bounded queue the runtime drains
into LOGS batches. Nothing here waits on delivery: a full queue drops the newest record (counted), so a
socket reader is never blocked by a slow hub; the spool downstream gives the delivery guarantees.

Bounds: `max_message_bytes` per message (longer ones are cut, counted), `max_connections` TCP+TLS
connections at once (more are closed at accept, counted), `idle_timeout_s` without a byte closes a
connection. A TLS listener takes plain TCP and then starts TLS, so a failed handshake is counted like
any other refusal. State changes are logged once: a sender going over its rate limit and back, the queue
filling and draining; every dropped message is a counter on /metrics, never a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.collect.syslog.config import SyslogConfig, SyslogTlsConfig
from agent.collect.syslog.framing import Frame, Framer
from agent.collect.syslog.parse import parse
from agent.collect.syslog.ratelimit import RateLimiter
from agent.collect.syslog.records import to_record
from shared.clock import Clock, SystemClock
from shared.logging import UpDown
from shared.model import LogRecord

log = logging.getLogger(__name__)

_READ_BYTES = 64 * 1024
# A burst of UDP syslog (a switch reloading, a link flapping) overflows the kernel's default ~208 KiB
# socket buffer in milliseconds, and the kernel drops datagrams without anyone counting them; the kernel
# caps this request at net.core.rmem_max.
_UDP_RCVBUF = 4 * 1024 * 1024
_HANDSHAKE_TIMEOUT_S = 10.0


@dataclass
class SyslogStats:
    """Counters read by the agent's /metrics at scrape time (agent/telemetry.py)."""

    received: Counter[str] = field(default_factory=Counter)  # by transport: udp, tcp, tls
    dropped: Counter[str] = field(default_factory=Counter)  # by reason: rate_limited, queue_full
    truncated: int = 0
    refused_connections: Counter[str] = field(default_factory=Counter)  # max_connections, tls_handshake
    closed_connections: Counter[str] = field(default_factory=Counter)  # idle, framing_error
    open_connections: int = 0


def server_tls_context(tls: SyslogTlsConfig) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with `ca_file` the sender must present a certificate signed by it."""
    ctx = ssl.create_default_context(
        ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None
    )
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    ctx.verify_mode = ssl.CERT_REQUIRED if tls.ca_file else ssl.CERT_NONE
    return ctx


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receiver: SyslogReceiver) -> None:
        self._receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        max_bytes = self._receiver.config.max_message_bytes
        frame = Frame(data[:max_bytes], truncated=len(data) > max_bytes)
        self._receiver.accept(frame, str(addr[0]), "udp")


class SyslogReceiver:
    """Listens once started (`udp_port`, `tcp_port`, `tls_port` are the bound ports, useful with `:0`);
    `take()` hands the queued records on. Safe to `aclose` without `start` and twice.

    `devices` maps sender addresses to device names (`records.device_addresses(config.devices)`).
    """

    def __init__(
        self, config: SyslogConfig, clock: Clock | None = None, devices: Mapping[str, str] | None = None
    ) -> None:
        self.config = config
        self._clock = clock or SystemClock()
        self._devices = dict(devices or {})
        self._limiter = RateLimiter(config.rate_per_source, config.burst_per_source, config.max_sources)
        self._queue: asyncio.Queue[LogRecord] = asyncio.Queue(config.queue_size)
        self._queue_health = UpDown(log, "syslog queue", self._clock)
        self._conn_health = UpDown(log, "syslog connection slots", self._clock)
        self._udp: asyncio.DatagramTransport | None = None
        self._servers: dict[str, asyncio.Server] = {}
        self._conns: set[asyncio.Task[None]] = set()
        self.stats = SyslogStats()

    @property
    def udp_port(self) -> int:
        return int(self._udp.get_extra_info("sockname")[1]) if self._udp is not None else 0

    @property
    def tcp_port(self) -> int:
        return self._port("tcp")

    @property
    def tls_port(self) -> int:
        return self._port("tls")

    def _port(self, kind: str) -> int:
        server = self._servers.get(kind)
        return int(server.sockets[0].getsockname()[1]) if server is not None and server.sockets else 0

    async def start(self) -> None:
        cfg = self.config
        if not cfg.enabled or self._udp is not None or self._servers:
            return
        loop = asyncio.get_running_loop()
        try:
            if cfg.udp_listen:
                host, port = _split(cfg.udp_listen)
                self._udp, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagrams(self), local_addr=(host, port)
                )
                sock = self._udp.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UDP_RCVBUF)
            if cfg.tcp_listen:
                await self._listen("tcp", cfg.tcp_listen, None)
            if cfg.tls is not None:
                await self._listen("tls", cfg.tls.listen, server_tls_context(cfg.tls))
        except BaseException:
            await self.aclose()
            raise
        bound = [f"udp {self.udp_port}"] if self._udp else []
        bound += [f"{kind} {self._port(kind)}" for kind in self._servers]
        log.info("syslog receiver listening on %s", ", ".join(bound))

    async def _listen(self, kind: str, listen: str, ctx: ssl.SSLContext | None) -> None:
        host, port = _split(listen)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._conns.add(task)
            try:
                await self._serve(reader, writer, kind, ctx)
            except asyncio.CancelledError:
                pass  # closing: asyncio's stream callback would log a cancelled handler as an error
            finally:
                self._conns.discard(task)

        self._servers[kind] = await asyncio.start_server(handle, host, port, limit=_READ_BYTES)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        kind: str,
        ctx: ssl.SSLContext | None,
    ) -> None:
        stats = self.stats
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else ""
        if stats.open_connections >= self.config.max_connections:
            stats.refused_connections["max_connections"] += 1
            self._conn_health.down(f"all {self.config.max_connections} in use, refusing new connections")
            writer.transport.abort()
            return
        stats.open_connections += 1
        self._conn_health.up()
        try:
            if ctx is not None:
                try:
                    await writer.start_tls(ctx, ssl_handshake_timeout=_HANDSHAKE_TIMEOUT_S)
                except (TimeoutError, OSError):  # ssl.SSLError is an OSError
                    stats.refused_connections["tls_handshake"] += 1
                    return
            await self._read_frames(reader, source, kind)
        finally:
            stats.open_connections -= 1
            writer.transport.abort()

    async def _read_frames(self, reader: asyncio.StreamReader, source: str, kind: str) -> None:
        framer = Framer(self.config.max_message_bytes)
        while True:
            try:
                data = await asyncio.wait_for(reader.read(_READ_BYTES), self.config.idle_timeout_s)
            except TimeoutError:
                self.stats.closed_connections["idle"] += 1
                return
            except OSError:  # reset, or a TLS record that does not decrypt
                return
            if not data:
                last = framer.close()
                if last is not None:
                    self.accept(last, source, kind)
                return
            for frame in framer.feed(data):
                self.accept(frame, source, kind)
            if framer.error is not None:
                self.stats.closed_connections["framing_error"] += 1
                return

    def accept(self, frame: Frame, source: str, transport: str) -> None:
        """One message from `source`: rate-limited, parsed, queued; every drop counted."""
        stats = self.stats
        stats.received[transport] += 1
        allowed, changed = self._limiter.allow(source, self._clock.monotonic())
        if changed:
            if allowed:
                log.info("syslog sender %s back under its rate limit", source)
            else:
                log.warning(
                    "syslog sender %s over its rate limit of %g messages/s: excess dropped and counted",
                    source,
                    self.config.rate_per_source,
                )
        if not allowed:
            stats.dropped["rate_limited"] += 1
            return
        if frame.truncated:
            stats.truncated += 1
        msg = parse(frame.data.decode("utf-8", errors="replace"))
        record = to_record(msg, self._clock.now_ms(), source, self._devices)
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            stats.dropped["queue_full"] += 1
            self._queue_health.down("full, dropping the newest records until the batcher catches up")
        else:
            self._queue_health.up()

    async def take(self, limit: int) -> list[LogRecord]:
        """Waits for a record, then returns it and what else is queued, at most `limit` in all."""
        out = [await self._queue.get()]
        out += self.take_nowait(limit - 1)
        return out

    def take_nowait(self, limit: int) -> list[LogRecord]:
        """The queued records, at most `limit`, without waiting."""
        out: list[LogRecord] = []
        while len(out) < limit and not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def aclose(self) -> None:
        """Stops listening and closes open connections; records already queued stay for `take_nowait`."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.close()
        for task in list(self._conns):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._conns, return_exceptions=True)
        for server in servers:
            await server.wait_closed()


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host, int(port)
