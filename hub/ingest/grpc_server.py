"""The mTLS gRPC ingest server; the only hub module that imports grpc.

The client certificate is required and verified against the hub's CA by TLS itself (so expired or
foreign certificates never reach the handler); the agent identity is read from that certificate.
Requests stay bytes end to end: the envelope is handed to the ingestor as received.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import grpc

from hub.identity.service import EnrollRefused
from hub.ingest.service import Ingestor
from shared import codec
from shared.errors import CodecError
from shared.tls import CertificateError, identity_from_pem

log = logging.getLogger(__name__)

_SERVICE = "outpost.v1.IngestService"
_CERT_SERVICE = "outpost.v1.CertificateService"

# Signs a renewal: (identity from the caller's certificate, CSR DER, peer address) -> certificate PEM.
Renewer = Callable[[str, bytes, str], Awaitable[bytes]]


class GrpcIngestServer:
    """Owns the grpc.aio server's lifecycle and answers Push."""

    def __init__(
        self,
        ingestor: Ingestor,
        listen: str,
        *,
        ca_pem: bytes,
        cert_pem: bytes,
        key_pem: bytes,
        max_message_bytes: int,
        renew: Renewer | None = None,
        is_revoked: Callable[[str], bool] = lambda _agent: False,
    ) -> None:
        self._ingestor = ingestor
        self._renew = renew
        self._is_revoked = is_revoked
        self._listen = listen
        self._creds = grpc.ssl_server_credentials(
            [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=True
        )
        self._max = max_message_bytes
        self._server: grpc.aio.Server | None = None
        self.port = 0

    @staticmethod
    async def _caller(context: grpc.aio.ServicerContext[bytes, bytes]) -> str:
        """The calling agent's identity, from the client certificate TLS already verified."""
        pems = list(context.auth_context().get("x509_pem_cert") or [])
        if not pems:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "client certificate required")
        try:
            return identity_from_pem(pems[0])
        except CertificateError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        raise AssertionError("unreachable: abort raises")

    async def _push(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        agent = await self._caller(context)
        try:
            envelope = codec.envelope_of_push_request(request)
        except CodecError as exc:
            self._ingestor.reject(agent, "grpc", exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if self._is_revoked(agent):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "agent certificate revoked")
        outcome = await self._ingestor.ingest(agent, envelope, "grpc")
        if outcome.retry_after_ms:
            context.set_trailing_metadata((("retry-after-ms", str(outcome.retry_after_ms)),))
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, f"overloaded, retry after {outcome.retry_after_ms} ms"
            )
        if outcome.error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, outcome.error)
        return codec.push_response(
            codec.PushResult(outcome.accepted_points, outcome.rejected_points, outcome.duplicate)
        )

    async def _renew_cert(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        """CertificateService.Renew: a new certificate for the identity the caller's certificate carries."""
        agent = await self._caller(context)
        if self._renew is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "renewal is not enabled on this hub")
        try:
            csr = codec.csr_of_renew_request(request)
        except CodecError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            cert_pem = await self._renew(agent, csr, context.peer())
        except EnrollRefused as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, exc.reason)
        return codec.renew_response(cert_pem)

    async def start(self) -> None:
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", self._max), ("grpc.so_reuseport", 0)]
        )
        handler = grpc.unary_unary_rpc_method_handler(self._push)  # bytes in, bytes out
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, {"Push": handler}),))
        if self._renew is not None:
            renew = grpc.unary_unary_rpc_method_handler(self._renew_cert)
            server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(_CERT_SERVICE, {"Renew": renew}),)
            )
        self.port = server.add_secure_port(self._listen, self._creds)
        await server.start()
        self._server = server
        host = self._listen.rsplit(":", 1)[0]
        log.info("gRPC ingest listening on %s:%d (mTLS required)", host, self.port)

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=5)
            self._server = None
