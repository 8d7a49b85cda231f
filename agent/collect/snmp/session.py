"""The pysnmp seam: GET and GETBULK/GETNEXT table walks for one target, plus a trap listener.

pysnmp is imported here and nowhere else. Everything leaving this module is plain Python (`VarBind`,
`Trap`, our own errors), so the rest of the agent never sees pyasn1 types.

v1/v2c requests do not go through pysnmp: their messages are encoded and decoded by ber.py (pyasn1's
decoding was most of the collector's CPU) and sent over one UDP socket per event loop and address
family shared by every community target, answers matched by request-id and sender. v3 targets use
pysnmp, each with its own engine, because the engine is where pysnmp caches the agent's engine ID,
boots and time: after the device reboots (notInTimeWindow / unknownEngineID), dropping that one engine
drops exactly that target's cache.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config as engine_config
from pysnmp.entity.rfc3413 import cmdgen, ntfrcv
from pysnmp.hlapi.v3arch.asyncio import (
    ContextData,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
)
from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.api import v2c

from agent.collect.snmp import ber
from agent.collect.snmp.ber import Item, Oid, VarBind
from agent.collect.snmp.config import SnmpConfig, TrapConfig, UsmUser, read_secret
from agent.collect.snmp.errors import (
    SnmpAuthError,
    SnmpEngineStale,
    SnmpProtocolError,
    SnmpTimeout,
)
from shared.clock import Clock

log = logging.getLogger(__name__)


_AUTH = {
    "md5": engine_config.USM_AUTH_HMAC96_MD5,
    "sha": engine_config.USM_AUTH_HMAC96_SHA,
    "sha224": engine_config.USM_AUTH_HMAC128_SHA224,
    "sha256": engine_config.USM_AUTH_HMAC192_SHA256,
    "sha384": engine_config.USM_AUTH_HMAC256_SHA384,
    "sha512": engine_config.USM_AUTH_HMAC384_SHA512,
}
_PRIV = {
    "des": engine_config.USM_PRIV_CBC56_DES,
    "aes128": engine_config.USM_PRIV_CFB128_AES,
    "aes192": engine_config.USM_PRIV_CFB192_AES,
    "aes256": engine_config.USM_PRIV_CFB256_AES,
}
# Agent rebooted (new engine boots) or was replaced: our cached engine parameters are stale.
_STALE = (errind.NotInTimeWindow, errind.UnknownEngineID)
_AUTH_FAIL = (errind.UnknownUserName, errind.WrongDigest, errind.UnknownSecurityName, errind.DecryptionError)
_END = (rfc1905.NoSuchObject, rfc1905.NoSuchInstance, rfc1905.EndOfMibView)
# Largest number of OIDs in one GET; agents reject bigger PDUs with tooBig.
_GET_CHUNK = 40

_endpoints: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Future[_Endpoint]]] = (
    weakref.WeakKeyDictionary()
)
# Request-ids of community requests, shared by every target of the process (the socket is shared).
_request_ids = itertools.count(random.randrange(1 << 30))
_INTEGERS = (rfc1902.Integer32, rfc1902.Gauge32, rfc1902.Unsigned32, rfc1902.TimeTicks)
# Requests go to pysnmp's command generators directly, beneath hlapi: hlapi resolves every request
# OID through the MIB view (a third of the CPU per poll in a profile) although we only send numeric
# OIDs. The generators and the target configurator keep no per-request state worth a fresh object.
_LCD = CommandGeneratorLcdConfigurator()
_GET = cmdgen.GetCommandGenerator()
_NEXT = cmdgen.NextCommandGeneratorSingleRun()
_BULK = cmdgen.BulkCommandGeneratorSingleRun()
_NULL = v2c.null
# (error status, error index, the variables decoded)
Reply = tuple[int, int, list[Item]]
_PDU = {"get": ber.GET, "next": ber.GETNEXT, "bulk": ber.GETBULK}


def parse_oid(text: str) -> Oid:
    """`1.3.6.1.2.1.1.3.0` (a leading dot allowed) -> tuple of ints. Raises ValueError on junk."""
    return tuple(int(p) for p in text.strip().lstrip(".").split("."))


def oid_text(oid: Oid) -> str:
    return ".".join(map(str, oid))


def _as_oid(name: object) -> Oid:
    return name.asTuple()  # type: ignore[attr-defined]


def _decode(name: object, value: object) -> VarBind | None:
    """pyasn1 value -> VarBind; None for noSuchObject/noSuchInstance/endOfMibView."""
    if isinstance(value, _END):
        return None
    oid = _as_oid(name)
    if isinstance(value, rfc1902.Counter64):
        return VarBind(oid, int(value), 64)
    if isinstance(value, rfc1902.Counter32):
        return VarBind(oid, int(value), 32)
    if isinstance(value, _INTEGERS):
        return VarBind(oid, int(value))
    if isinstance(value, rfc1902.IpAddress):
        return VarBind(oid, ".".join(str(b) for b in bytes(value)))
    if isinstance(value, rfc1902.OctetString | rfc1902.Opaque):
        raw = bytes(value)
        return VarBind(oid, raw.decode("utf-8", errors="replace").rstrip("\x00"))
    if isinstance(value, rfc1902.ObjectIdentifier):
        return VarBind(oid, oid_text(tuple(value)))
    if isinstance(value, v2c.Null):
        return None
    return VarBind(oid, str(value))


class _Endpoint(asyncio.DatagramProtocol):
    """The UDP socket of every community target of one event loop and address family.

    Answers go to the request whose id they carry, if they come from the address it was sent to;
    anything else (a late answer to a retried request, a stranger's datagram) is dropped (`dropped`
    counts them). Closed when the last session using it closes.
    """

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[tuple[object, ...], asyncio.Future[ber.Response]]] = {}
        self.users = 0
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[object, ...]) -> None:
        try:
            response = ber.decode_response(data)
        except SnmpProtocolError:
            self.dropped += 1
            return
        waiting = self.pending.get(response.request_id & 0x7FFFFFFF)
        if waiting is None or waiting[0] != addr[:2] or waiting[1].done():
            self.dropped += 1
            return
        waiting[1].set_result(response)


async def _open(family: int) -> _Endpoint:
    endpoint = _Endpoint()
    host = "::" if family == socket.AF_INET6 else "0.0.0.0"
    await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: endpoint, local_addr=(host, 0), family=family
    )
    return endpoint


async def _endpoint(device: str, family: int) -> _Endpoint:
    """The shared socket for `family`, opened once however many sessions ask at the same time.

    Raises:
        SnmpProtocolError: the socket cannot be opened.
    """
    by_family = _endpoints.setdefault(asyncio.get_running_loop(), {})
    while True:
        opening = by_family.get(family)
        if opening is None:
            opening = by_family[family] = asyncio.ensure_future(_open(family))
        try:
            endpoint = await asyncio.shield(opening)
        except OSError as exc:
            by_family.pop(family, None)
            raise SnmpProtocolError(device, f"cannot open a UDP socket: {exc}") from None
        if endpoint.transport is not None and not endpoint.transport.is_closing():
            endpoint.users += 1
            return endpoint
        # Its last user closed it while we waited: open a new one.
        if by_family.get(family) is opening:
            del by_family[family]


def _release(family: int, endpoint: _Endpoint) -> None:
    endpoint.users -= 1
    if endpoint.users > 0:
        return
    if endpoint.transport is not None:
        endpoint.transport.close()
    for by_family in _endpoints.values():
        opening = by_family.get(family)
        if opening is not None and _opened(opening) is endpoint:
            del by_family[family]


def _opened(opening: asyncio.Future[_Endpoint]) -> _Endpoint | None:
    if not opening.done() or opening.cancelled() or opening.exception() is not None:
        return None
    return opening.result()


def _usm_data(user: UsmUser) -> UsmUserData:
    return UsmUserData(
        user.username,
        authKey=read_secret(user.auth_key, user.auth_key_file),
        privKey=read_secret(user.priv_key, user.priv_key_file),
        authProtocol=_AUTH[user.auth_protocol] if user.auth_protocol else engine_config.USM_AUTH_NONE,
        privProtocol=_PRIV[user.priv_protocol] if user.priv_protocol else engine_config.USM_PRIV_NONE,
    )


class SnmpSession:
    """Requests to one device. Not safe for concurrent use: the scheduler keeps one poll in flight.

    v3 engine recovery: on notInTimeWindow/unknownEngineID the target's engine is replaced and the
    request retried once; a further failure waits out a backoff (1 s doubling to 5 min) before the next
    rediscovery, so a flapping agent is not hammered.
    """

    RECOVERY_BACKOFF_S = (1.0, 300.0)

    def __init__(self, config: SnmpConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._engine: SnmpEngine | None = None
        self._transport: UdpTransportTarget | None = None
        self._auth: UsmUserData | None = None
        self._community: bytes | None = None
        self._endpoint: tuple[int, tuple[object, ...], _Endpoint] | None = None  # family, address, socket
        self._context = ContextData(contextName=config.usm.context_name if config.usm else "")
        self._backoff_s = self.RECOVERY_BACKOFF_S[0]
        self._next_recovery = 0.0
        self.engine_resets = 0
        self._answered = False  # the current engine got at least one answer

    @property
    def device(self) -> str:
        return self._config.name

    async def _ready(self) -> tuple[SnmpEngine, UsmUserData, UdpTransportTarget]:
        """The v3 target's engine, user and transport, made on first use."""
        cfg = self._config
        if self._auth is None:
            assert cfg.usm is not None  # the config validator guarantees it
            self._auth = _usm_data(cfg.usm)
        if self._transport is None:
            self._transport = await UdpTransportTarget.create(
                (cfg.address, cfg.port), timeout=cfg.timeout_s, retries=cfg.retries
            )
        if self._engine is None:
            self._engine = SnmpEngine()
        return self._engine, self._auth, self._transport

    async def _community_ready(self) -> tuple[bytes, tuple[object, ...], _Endpoint]:
        """The community, the device's resolved address and the shared socket, made on first use.

        Raises:
            SnmpProtocolError: the address does not resolve.
        """
        cfg = self._config
        if self._community is None:
            self._community = (read_secret(cfg.community, cfg.community_file) or "").encode()
        if self._endpoint is None:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(cfg.address, cfg.port, type=socket.SOCK_DGRAM)
            except OSError as exc:
                raise SnmpProtocolError(cfg.name, f"cannot resolve address: {exc}") from None
            family, _, _, _, sockaddr = infos[0]
            self._endpoint = (family, tuple(sockaddr), await _endpoint(cfg.name, family))
        return self._community, self._endpoint[1], self._endpoint[2]

    def _drop_engine(self) -> None:
        if self._engine is not None:
            self._engine.close_dispatcher()
        self._engine = None
        self._answered = False

    def _check(self, error_indication: object, oid: str = "") -> None:
        if not error_indication:
            return
        dev = self._config.name
        if isinstance(error_indication, errind.RequestTimedOut):
            raise SnmpTimeout(dev, "no response", oid)
        if isinstance(error_indication, _STALE):
            raise SnmpEngineStale(dev, str(error_indication), oid)
        if isinstance(error_indication, _AUTH_FAIL):
            raise SnmpAuthError(dev, str(error_indication), oid)
        raise SnmpProtocolError(dev, str(error_indication), oid)

    async def _send(self, op: str, oids: Sequence[Oid], repetitions: int) -> Reply:
        """One GET/GETNEXT/GETBULK of numeric OIDs: community messages through ber.py, v3 through pysnmp.

        Raises:
            SnmpError: no answer after the retries, or an engine error.
        """
        if self._config.version == "3":
            return await self._send_v3(op, oids, repetitions)
        community, address, endpoint = await self._community_ready()
        version = 0 if self._config.version == "1" else 1
        loop = asyncio.get_running_loop()
        for _ in range(self._config.retries + 1):
            request_id = next(_request_ids) & 0x7FFFFFFF
            message = ber.encode_request(
                version, community, _PDU[op], request_id, 0, repetitions if op == "bulk" else 0, oids
            )
            future: asyncio.Future[ber.Response] = loop.create_future()
            endpoint.pending[request_id] = (address[:2], future)
            try:
                assert endpoint.transport is not None
                endpoint.transport.sendto(message, address)
                response = await asyncio.wait_for(future, self._config.timeout_s)
            except TimeoutError:
                continue
            finally:
                endpoint.pending.pop(request_id, None)
            return response.error_status, response.error_index, response.items
        raise SnmpTimeout(self._config.name, "no response", oid_text(oids[0]) if oids else "")

    async def _send_v3(self, op: str, oids: Sequence[Oid], repetitions: int) -> Reply:
        """One request through the target's pysnmp engine; its variables are decoded to ours."""
        engine, auth, transport = await self._ready()
        addr_name, _ = _LCD.configure(engine, auth, transport, self._context.contextName)
        future: asyncio.Future[tuple[object, int, int, Any]] = asyncio.get_running_loop().create_future()

        def done(
            _engine: object,
            _handle: object,
            indication: object,
            status: object,
            index: object,
            binds: Any,
            _: object,
        ) -> None:
            if not future.done():
                future.set_result((indication, int(status), int(index), binds))  # type: ignore[call-overload]

        binds = [(oid, _NULL) for oid in oids]
        ctx_id, ctx_name = self._context.contextEngineId, self._context.contextName
        if op == "bulk":
            _BULK.send_varbinds(engine, addr_name, ctx_id, ctx_name, 0, repetitions, binds, done)
        else:
            (_GET if op == "get" else _NEXT).send_varbinds(engine, addr_name, ctx_id, ctx_name, binds, done)
        indication, status, index, var_binds = await future
        self._check(indication)
        items = [(_as_oid(n), _decode(n, v), isinstance(v, _END)) for n, v in var_binds]
        return status, index, items

    async def _request(self, op: str, oids: Sequence[Oid], repetitions: int = 0) -> Reply:
        """Runs one request, rediscovering a stale v3 engine once (with backoff).

        A v3 agent that answered before and now times out is treated as stale too: after a reboot
        with new engine boots, pysnmp discards the agent's reports and the request just times out.
        """
        for attempt in (0, 1):
            try:
                reply = await self._send(op, oids, repetitions)
            except (SnmpEngineStale, SnmpTimeout) as exc:
                stale = isinstance(exc, SnmpEngineStale) or (self._config.version == "3" and self._answered)
                now = self._clock.monotonic()
                if not stale or attempt == 1 or now < self._next_recovery:
                    raise
                self._next_recovery = now + self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, self.RECOVERY_BACKOFF_S[1])
                self.engine_resets += 1
                log.info("%s: SNMPv3 engine stale (%s): rediscovering", self.device, type(exc).__name__)
                self._drop_engine()
                continue
            if not self._answered:
                self._answered = True
                self._backoff_s = self.RECOVERY_BACKOFF_S[0]
            return reply
        raise AssertionError("unreachable")

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, VarBind]:
        """GETs scalars; missing ones are simply absent from the result.

        Raises:
            SnmpError: timeout, auth or protocol failure of the whole request.
        """
        out: dict[Oid, VarBind] = {}
        for i in range(0, len(oids), _GET_CHUNK):
            pending = list(oids[i : i + _GET_CHUNK])
            while pending:
                status, index, items = await self._request("get", pending)
                if status == 2 and 0 < index <= len(pending):  # v1 noSuchName: drop that OID, ask again
                    pending.pop(index - 1)
                    continue
                if status:
                    raise SnmpProtocolError(self.device, f"error status {status}", oid_text(pending[0]))
                for _, vb, _ in items:
                    if vb is not None:
                        out[vb.oid] = vb
                break
        return out

    async def present(self, roots: Sequence[Oid]) -> set[Oid]:
        """Which of `roots` hold at least one variable: one GETNEXT per root (v1 noSuchName drops the
        root it names and asks again for the rest).

        Raises:
            SnmpError: timeout, auth or protocol failure of the whole request.
        """
        found: set[Oid] = set()
        for i in range(0, len(roots), _GET_CHUNK):
            pending = list(roots[i : i + _GET_CHUNK])
            while pending:
                status, index, items = await self._request("next", pending)
                if status == 2 and 0 < index <= len(pending):
                    pending.pop(index - 1)
                    continue
                if status:
                    raise SnmpProtocolError(self.device, f"error status {status}", oid_text(pending[0]))
                for root, (oid, _, end) in zip(pending, items, strict=False):
                    if not end and oid[: len(root)] == root:
                        found.add(root)
                break
        return found

    async def walk(self, roots: Sequence[Oid]) -> dict[Oid, list[VarBind]]:
        """Walks several table columns side by side (one GETBULK per round, GETNEXT for v1).

        Returns each root's rows in OID order. Stops a column at its subtree's end, endOfMibView, v1
        noSuchName naming it, or an OID that does not increase (a broken agent must not loop us forever).
        """
        rows: dict[Oid, list[VarBind]] = {r: [] for r in roots}
        cursor: dict[Oid, Oid] = {r: r for r in roots}
        while cursor:
            active = list(cursor)
            starts = [cursor[r] for r in active]
            if self._config.version == "1":
                status, index, items = await self._request("next", starts)
            else:
                reps = max(1, self._config.max_repetitions // len(active))
                status, index, items = await self._request("bulk", starts, reps)
            if status == 2 and 0 < index <= len(active):
                # v1 noSuchName: that column ran past the end of the MIB view. Only it is finished; the
                # agent answered nothing for the others, so they are asked again without it.
                cursor.pop(active[index - 1])
                continue
            if status:
                raise SnmpProtocolError(self.device, f"error status {status}", oid_text(active[0]))
            if not items:
                break
            finished: set[Oid] = set()
            width = len(active)
            for i, (oid, vb, end) in enumerate(items):
                root = active[i % width]
                if root in finished:
                    continue
                if end or oid[: len(root)] != root or oid <= cursor[root]:
                    finished.add(root)
                    continue
                cursor[root] = oid
                if vb is not None:
                    rows[root].append(vb)
            for root in finished:
                cursor.pop(root, None)
        return rows

    async def aclose(self) -> None:
        self._drop_engine()
        self._transport = None
        if self._endpoint is not None:
            _release(self._endpoint[0], self._endpoint[2])
            self._endpoint = None


@dataclass(frozen=True, slots=True)
class Trap:
    """A received notification: sender address, SNMP version, and its variables."""

    source: str
    version: str
    var_binds: tuple[VarBind, ...]


class TrapListener:
    """A UDP notification receiver (v1/v2c communities, v3 users) calling `on_trap` per trap."""

    def __init__(self, config: TrapConfig, on_trap: Callable[[Trap], None]) -> None:
        self._config = config
        self._on_trap = on_trap
        self._engine: SnmpEngine | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self.port = 0

    async def start(self) -> None:
        host, _, port = self._config.listen.rpartition(":")
        engine = SnmpEngine()
        transport = udp.UdpAsyncioTransport().open_server_mode((host, int(port)))
        engine_config.add_transport(engine, udp.DOMAIN_NAME, transport)
        for i, community in enumerate(self._config.communities):
            engine_config.add_v1_system(engine, f"trap-area-{i}", community.get_secret_value())
        for user in self._config.v3_users:
            data = _usm_data(user)
            engine_config.add_v3_user(
                engine,
                user.username,
                data.authentication_protocol,
                data.authentication_key,
                data.privacy_protocol,
                data.privacy_key,
                securityEngineId=v2c.OctetString(hexValue=user.engine_id.removeprefix("0x")),
            )
        self._receiver = ntfrcv.NotificationReceiver(engine, self._received)
        self._engine = engine
        for _ in range(200):  # the datagram endpoint binds once the loop runs
            if transport.transport is not None:
                break
            await asyncio.sleep(0.005)
        sock = transport.transport.get_extra_info("sockname") if transport.transport else None
        self.port = int(sock[1]) if sock else int(port)

    def _received(
        self,
        engine: SnmpEngine,
        state_reference: object,
        context_engine_id: object,
        context_name: object,
        var_binds: Sequence[tuple[object, object]],
        cb_ctx: object,
    ) -> None:
        ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        address = ctx.get("transportAddress") or ("?", 0)
        model = int(ctx.get("securityModel", 0))
        version = {1: "1", 2: "2c", 3: "3"}.get(model, "?")
        decoded = tuple(vb for vb in (_decode(n, v) for n, v in var_binds) if vb is not None)
        self._on_trap(Trap(f"{address[0]}", version, decoded))

    async def aclose(self) -> None:
        if self._engine is not None:
            if self._receiver is not None:
                self._receiver.close(self._engine)
            self._engine.close_dispatcher()
        self._engine = self._receiver = None
