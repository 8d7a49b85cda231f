"""Serving an ASGI app on uvicorn inside the hub's event loop: the REST API and the enrollment listener.

The one module that imports uvicorn. The hub's CLI owns SIGINT/SIGTERM, so uvicorn's own signal
handling is switched off; `start` returns once the socket is bound (re-raising why it could not be, e.g.
port in use), and `port` is the bound port (useful with `:0`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the hub's CLI owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _HeaderDeadlineH11(H11Protocol):
    """h11 that closes a connection whose first request has not arrived `header_timeout_s` after connect.

    uvicorn times out idle keep-alive connections but not a client that trickles its request line and
    headers (slowloris) or never sends one: each such connection would hold a socket forever. Used with
    `Connection: close` answers, so one request per connection and the first is the only one to guard.
    """

    header_timeout_s = 10.0
    # h11 bounds only a request head that is still incomplete, so a large head that arrives whole in one
    # read passed (whether it did depended on how TLS records were coalesced): bounded here, always.
    max_head_bytes = 16 * 1024
    # A refused connection reads (and drops) the client's bytes until it has been quiet this long, at most
    # `linger_s` in all, before it closes.
    linger_quiet_s = 0.25
    linger_s = 2.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_deadline_passed)
        self._head_bytes = 0
        self._head_tail = b""
        self._head_done = False
        self._refused = False
        self._quiet: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused:  # answered 431: dropped until the lingering close
            if self._quiet is not None:
                self._quiet.cancel()
            self._quiet = self.loop.call_later(self.linger_quiet_s, self.transport.close)
            return
        if not self._head_done:
            seen = self._head_tail + data
            end = seen.find(b"\r\n\r\n")
            self._head_bytes += (end + 4 - len(self._head_tail)) if end >= 0 else len(data)
            self._head_done, self._head_tail = end >= 0, seen[-3:]
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
                return
        super().data_received(data)

    def _refuse_head(self) -> None:
        """Answers 431, then reads and discards what the client still sends before closing.

        Closing at once with the rest of the head unread makes the kernel answer with a reset, which
        destroys the 431 in the client's receive buffer before it is read (a lingering close, as nginx's).
        """
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        self._refused = True
        self._quiet = self.loop.call_later(self.linger_quiet_s, self.transport.close)
        self.loop.call_later(self.linger_s, self.transport.close)

    def _header_deadline_passed(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_deadline.cancel()
        super().connection_lost(exc)


def _guarded_h11(header_timeout_s: float) -> type[H11Protocol]:
    return type("GuardedH11", (_HeaderDeadlineH11,), {"header_timeout_s": header_timeout_s})


class AsgiServer:
    """One uvicorn server for one app on `listen` (`host:port`), optionally over TLS."""

    def __init__(
        self,
        app: ASGIApp,
        listen: str,
        *,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        header_timeout_s: float | None = None,
    ) -> None:
        """
        Args:
            app: the ASGI application.
            listen: `host:port`; port 0 binds a free port.
            cert_file, key_file: serve HTTPS with this server certificate (no client certificates asked).
            header_timeout_s: close connections whose request has not arrived by then (plain h11 is used;
                set it on listeners that face unauthenticated clients and answer `Connection: close`).
        """
        self.host, port = listen.rsplit(":", 1)
        self._port = int(port)
        options: dict[str, Any] = {}
        if cert_file is not None and key_file is not None:
            options.update(ssl_certfile=str(cert_file), ssl_keyfile=str(key_file))
        if header_timeout_s is not None:
            options["http"] = _guarded_h11(header_timeout_s)
        # "error": uvicorn logs a warning per malformed request, which anyone reaching the port could
        # repeat; those are answered 400, and failures inside the app are still logged.
        # WebSockets: no per-message deflate (a stream's frame goes to every client, and deflate would
        # compress it again for each connection), and client frames are small requests (64 KiB at most).
        self._config = uvicorn.Config(
            app,
            host=self.host,
            port=self._port,
            log_level="error",
            lifespan="off",
            ws_max_size=64 * 1024,
            ws_per_message_deflate=False,
            **options,
        )
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the configured one before)."""
        if self._server is not None and self._server.servers:
            sockets = self._server.servers[0].sockets
            if sockets:
                return int(sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        """Returns once the socket listens.

        Raises:
            OSError, SystemExit, RuntimeError: why the server could not start (e.g. port in use).
        """
        self._server = _Server(self._config)
        self._task = asyncio.create_task(self._server.serve(), name=f"http:{self.host}:{self._port}")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises why it could not start
                raise RuntimeError(f"HTTP server on {self.host}:{self._port} stopped during start-up")
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        """Stops accepting, lets requests in flight finish; safe without start and safe twice."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
        self._server = self._task = None
