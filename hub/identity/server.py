"""The enrollment listener: two endpoints on Starlette, served by uvicorn over server-authenticated TLS.

It cannot use mTLS (an agent without a certificate is exactly who calls it), so it speaks two requests:
`GET /v1/ca.pem` (public; the agent checks it against the pin in its token) and `POST /v1/enroll` (an
EnrollRequest protobuf; answered with an EnrollResponse, or 403 with the refusal reason). Bodies are
capped (413), a request that does not arrive in time is cut off (headers: the connection is closed;
body: 408), every answer closes the connection, and nothing the client sends is echoed back or logged.
An unexpected failure (state database down, a bug) is answered 500 and logged when it starts and when
enrollment works again, never per request.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.identity.service import EnrollRefused, EnrollService
from hub.serve import AsgiServer
from shared import codec
from shared.clock import Clock, SystemClock
from shared.errors import CodecError
from shared.logging import UpDown

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
TIMEOUT_S = 10.0


class _BadRequest(Exception):
    """Raised while reading a request body that is malformed, oversized or too slow; carries the answer."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _text(status: int, text: str) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain")


class _CloseEveryConnection:
    """Adds `Connection: close` to every answer (404s and 405s too): one request per connection, so the
    header deadline guards every request and no idle keep-alive socket is left to an anonymous client."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
            await send(message)

        await self._app(scope, receive, send_closing)


async def _read_body(request: Request, timeout_s: float) -> bytes:
    """The body, at most MAX_BODY bytes, within `timeout_s`.

    Raises:
        _BadRequest: 413 when it is (or says it is) larger, 408 when it does not arrive in time.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _BadRequest(413, "body too large")

    async def read() -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise _BadRequest(413, "body too large")
        return bytes(body)

    try:
        return await asyncio.wait_for(read(), timeout_s)
    except TimeoutError:
        raise _BadRequest(408, "request timeout") from None
    except ClientDisconnect:
        raise _BadRequest(400, "bad request") from None


class EnrollServer:
    """Owns the listener; `port` is the bound port after `start`."""

    def __init__(
        self,
        service: EnrollService,
        listen: str,
        *,
        cert_file: Path,
        key_file: Path,
        ca_file: Path,
        clock: Clock | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        """`timeout_s` bounds the arrival of a request's headers and, separately, of its body."""
        self._service = service
        self._timeout_s = timeout_s
        self._ca_pem = ca_file.read_bytes()
        self._health = UpDown(log, "enrollment", clock or SystemClock())
        app = Starlette(
            routes=[
                Route("/v1/ca.pem", self._ca, methods=["GET"]),
                Route("/v1/enroll", self._enroll, methods=["POST"]),
            ]
        )
        self._server = AsgiServer(
            _CloseEveryConnection(app),
            listen,
            cert_file=cert_file,
            key_file=key_file,
            header_timeout_s=timeout_s,
        )

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> None:
        await self._server.start()
        log.info("enrollment listening on %s:%d (TLS, token + CSR)", self._server.host, self.port)

    async def _ca(self, request: Request) -> Response:
        return Response(self._ca_pem, media_type="application/x-pem-file")

    async def _enroll(self, request: Request) -> Response:
        peer = f"{request.client.host}:{request.client.port}" if request.client else "?"
        try:
            body = await _read_body(request, self._timeout_s)
            req = codec.decode_enroll_request(body)
            resp = await asyncio.to_thread(self._service.enroll, req, peer)
        except _BadRequest as exc:
            return _text(exc.status, exc.text)
        except CodecError:
            return _text(400, "malformed_request")
        except EnrollRefused as exc:
            self._health.up()
            return _text(403, exc.reason)
        except Exception as exc:  # state database down, a bug: answer, log on change, keep serving
            self._health.down(
                f"{type(exc).__name__}; requests are answered 500 until it works again",
                logging.ERROR,
                exc_info=True,
            )
            return _text(500, "internal error")
        self._health.up()
        return Response(codec.encode_enroll_response(resp), media_type="application/x-protobuf")

    async def aclose(self) -> None:
        await self._server.aclose()
