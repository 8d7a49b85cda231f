"""The enrollment listener: a deliberately tiny HTTP/1.1 server over server-authenticated TLS.

It cannot use mTLS (an agent without a certificate is exactly who calls it), so it speaks two requests:
`GET /v1/ca.pem` (public; the agent checks it against the pin in its token) and `POST /v1/enroll` (an
EnrollRequest protobuf; answered with an EnrollResponse, or 403 with the refusal reason). Bodies are
capped, connections time out, and nothing the client sends is ever echoed back or logged.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

from hub.identity.service import EnrollRefused, EnrollService
from shared import codec
from shared.errors import CodecError

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
_TIMEOUT_S = 10.0


class EnrollServer:
    """Owns the listening socket; `port` is the bound port after `start`."""

    def __init__(
        self, service: EnrollService, listen: str, *, cert_file: Path, key_file: Path, ca_file: Path
    ) -> None:
        self._service = service
        self._host, port = listen.rsplit(":", 1)
        self.port = int(port)
        self._ca_pem = ca_file.read_bytes()
        self._failed = False
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ctx.load_cert_chain(str(cert_file), str(key_file))
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self.port, ssl=self._ctx)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("enrollment listening on %s:%d (TLS, token + CSR)", self._host, self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"
        try:
            method, path, body = await asyncio.wait_for(_read_request(reader), _TIMEOUT_S)
            status, ctype, payload = await self._route(method, path, body, peer_text)
        except (TimeoutError, ConnectionError, ValueError, ssl.SSLError, asyncio.IncompleteReadError):
            status, ctype, payload = "400 Bad Request", "text/plain", b"bad request\n"
        except Exception:  # state database down, a bug: answer, log once, keep serving
            if not self._failed:
                self._failed = True
                log.exception("enrollment request failed; further failures are answered 500 silently")
            status, ctype, payload = "500 Internal Server Error", "text/plain", b"internal error\n"
        try:
            head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n"
            writer.write(head.encode() + b"Connection: close\r\n\r\n" + payload)
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _route(self, method: str, path: str, body: bytes, peer: str) -> tuple[str, str, bytes]:
        if method == "GET" and path == "/v1/ca.pem":
            return "200 OK", "application/x-pem-file", self._ca_pem
        if method != "POST" or path != "/v1/enroll":
            return "404 Not Found", "text/plain", b"not found\n"
        try:
            req = codec.decode_enroll_request(body)
            resp = await asyncio.to_thread(self._service.enroll, req, peer)
        except CodecError:
            return "400 Bad Request", "text/plain", b"malformed_request\n"
        except EnrollRefused as exc:
            return "403 Forbidden", "text/plain", exc.reason.encode() + b"\n"
        return "200 OK", "application/x-protobuf", codec.encode_enroll_response(resp)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    """Reads one request; raises ValueError on anything malformed or oversized."""
    parts = (await reader.readline()).decode("latin-1").split()
    if len(parts) < 2:
        raise ValueError("no request line")
    length = 0
    for _ in range(64):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    else:
        raise ValueError("too many headers")
    if not 0 <= length <= MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    return parts[0], parts[1], body
