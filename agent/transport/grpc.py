"""Delivers envelopes over mTLS gRPC; the only agent module that imports grpc."""

from __future__ import annotations

from typing import cast

import grpc

from agent.transport.base import DeliveryRejected
from shared import codec
from shared.errors import CodecError, TransientError

# Status codes worth retrying; everything else means this envelope will never be accepted.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}


def _identity(data: bytes) -> bytes:
    return data


class GrpcTransport:
    """One long-lived channel; gRPC reconnects by itself, so a dropped link is just UNAVAILABLE."""

    def __init__(
        self,
        address: str,
        *,
        ca_pem: bytes,
        cert_pem: bytes,
        key_pem: bytes,
        server_name: str | None = None,
        timeout_s: float = 10.0,
        max_message_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._address = address
        self._creds = grpc.ssl_channel_credentials(ca_pem, key_pem, cert_pem)
        self._server_name = server_name
        self._timeout = timeout_s
        self._max = max_message_bytes
        self._channel: grpc.aio.Channel | None = None
        self._push: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] | None = None

    async def start(self) -> None:
        options: list[tuple[str, int | str]] = [
            ("grpc.max_send_message_length", self._max),
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 10_000),
            ("grpc.keepalive_time_ms", 30_000),
        ]
        if self._server_name:
            options.append(("grpc.ssl_target_name_override", self._server_name))
        self._channel = grpc.aio.secure_channel(self._address, self._creds, options=options)
        self._push = self._channel.unary_unary(
            codec.PUSH_METHOD, request_serializer=_identity, response_deserializer=_identity
        )

    async def send(self, envelope: bytes) -> codec.PushResult:
        if self._push is None:
            raise RuntimeError("transport not started")
        try:
            raw = await self._push(codec.push_request(envelope), timeout=self._timeout, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code in _TRANSIENT:
                raise TransientError(f"hub {code.name}: {exc.details()}", _retry_after(exc)) from None
            raise DeliveryRejected(f"hub {code.name}: {exc.details()}") from None
        return codec.parse_push_response(raw)

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel = self._push = None


def _retry_after(exc: grpc.aio.AioRpcError) -> float:
    pairs = cast("list[tuple[str, str | bytes]]", list(exc.trailing_metadata() or ()))
    for key, value in pairs:
        if key == "retry-after-ms":
            try:
                return int(value) / 1000.0
            except (TypeError, ValueError):
                return 0.0
    return 0.0


async def renew_certificate(
    address: str,
    csr_der: bytes,
    *,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    server_name: str | None = None,
    timeout_s: float = 10.0,
) -> bytes:
    """Asks the hub (CertificateService.Renew, on its mTLS ingest port) to sign `csr_der` for the identity
    of the current certificate; returns the new certificate's PEM.

    Raises:
        TransientError: the hub is unreachable or busy.
        DeliveryRejected: the hub refused (revoked agent, bad CSR).
    """
    options: list[tuple[str, int | str]] = []
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    creds = grpc.ssl_channel_credentials(ca_pem, key_pem, cert_pem)
    async with grpc.aio.secure_channel(address, creds, options=options) as channel:
        call = channel.unary_unary(
            codec.RENEW_METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        try:
            raw = await call(codec.renew_request(csr_der), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _TRANSIENT:
                raise TransientError(f"hub {exc.code().name}: {exc.details()}") from None
            raise DeliveryRejected(f"hub {exc.code().name}: {exc.details()}") from None
    try:
        return codec.certificate_of_renew_response(raw)
    except CodecError as exc:
        raise DeliveryRejected(f"unreadable renewal answer: {exc}") from None
