"""The redfish-library seam: one authenticated session per BMC, at most N requests in flight.

The `redfish` library's asyncio client and the aiohttp session it rides on are imported here only.
TLS verification is explicit: a default SSL context (system CAs, or `ca_file`) unless the target opts
out. The session token is created once, reused for every read, and DELETEd on close and on error, so a
BMC's small session table never fills up with our leftovers; a BMC whose SessionService does not work
gets basic auth on every request instead (the `no-sessions` quirk).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import aiohttp
from redfish.aio.client import AsyncRedfishClient
from redfish.aio.exceptions import RedfishAuthenticationError, RedfishConnectionError
from redfish.aio.exceptions import RedfishError as LibraryError

from agent.collect.redfish import quirks
from agent.collect.redfish.config import RedfishConfig
from agent.collect.redfish.errors import (
    RedfishAuthError,
    RedfishBadResponse,
    RedfishBusy,
    RedfishNotFound,
    RedfishUnavailable,
)

log = logging.getLogger(__name__)

_DEFAULT_RETRY_AFTER_S = 30.0


def _why(exc: BaseException) -> str:
    """What went wrong on the wire, without anything from the request (URLs may carry no secret, but
    the library's messages are not ours to vouch for)."""
    if isinstance(exc.__cause__, aiohttp.ClientConnectorCertificateError):
        return "TLS certificate verification failed (set ca_file, or verify_tls: false for this BMC)"
    return type(exc.__cause__ or exc).__name__


def _retry_after(value: str | None) -> float:
    try:
        return max(1.0, float(value)) if value else _DEFAULT_RETRY_AFTER_S
    except ValueError:
        return _DEFAULT_RETRY_AFTER_S


class RedfishSession:
    """GETs JSON resources from one BMC; opens lazily, re-opens after `reset()`."""

    def __init__(self, config: RedfishConfig) -> None:
        self._config = config
        self._http: aiohttp.ClientSession | None = None
        self._client: AsyncRedfishClient | None = None
        self._logged_in = False
        self._gate = asyncio.Semaphore(config.max_concurrent_requests)
        self._opening = asyncio.Lock()
        self.sessions_opened = 0
        self.sessions_deleted = 0

    @property
    def device(self) -> str:
        return self._config.name

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self._config.verify_tls:
            return False
        ctx = ssl.create_default_context(cafile=str(self._config.ca_file) if self._config.ca_file else None)
        return ctx

    async def _open(self) -> AsyncRedfishClient:
        async with self._opening:  # two requests racing to the first login must share one session
            if self._client is None:
                self._client = await self._login()
            return self._client

    async def _login(self) -> AsyncRedfishClient:
        cfg = self._config
        password = None
        if cfg.password is not None:
            password = cfg.password.get_secret_value()
        elif cfg.password_file is not None:
            password = cfg.password_file.read_text().strip()
        await self._close_http()  # a previous login that never finished must not leave its sockets behind
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl(), limit=2))
        client = AsyncRedfishClient(
            cfg.url, cfg.username, password, session=self._http, timeout=cfg.request_timeout_s
        )
        if cfg.username is not None:
            method = quirks.login_method(cfg.quirks)
            try:
                await client.login(auth=method)
            except RedfishAuthenticationError as exc:
                await self._close_http()
                raise RedfishAuthError(
                    self.device,
                    f"login rejected for user {cfg.username!r}: wrong credentials, or a BMC whose "
                    "SessionService does not work (quirks: [no-sessions])",
                ) from exc
            except (RedfishConnectionError, LibraryError, aiohttp.ClientError) as exc:
                await self._close_http()
                raise RedfishUnavailable(self.device, f"login failed: {_why(exc)}") from exc
            except BaseException:  # cancelled by the poll deadline: don't leak the connector
                await self._close_http()
                raise
            if method == "session":
                self._logged_in = True
                self.sessions_opened += 1
        return client

    async def get(self, path: str) -> dict[str, Any]:
        """One resource as a dict.

        Raises:
            RedfishBusy: 503/429 (with Retry-After). RedfishAuthError: 401/403. RedfishNotFound: 404.
            RedfishUnavailable: unreachable or timed out. RedfishBadResponse: anything else.
        """
        async with self._gate:
            client = await self._open()
            try:
                resp = await client.get(path)
            except RedfishConnectionError as exc:
                raise RedfishUnavailable(self.device, _why(exc), path) from exc
        status = int(resp.status)
        if status in (429, 503):
            raise RedfishBusy(self.device, path, status, _retry_after(resp.getheader("Retry-After")))
        if status in (401, 403):
            who = f" for user {self._config.username!r}" if self._config.username else " (no credentials set)"
            raise RedfishAuthError(self.device, f"HTTP {status}: access denied{who}", path, status)
        if status == 404:
            raise RedfishNotFound(self.device, "not found", path, status)
        if not 200 <= status < 300:
            raise RedfishBadResponse(self.device, f"HTTP {status}", path, status)
        try:
            body = resp.dict
        except LibraryError as exc:  # the library's RedfishProtocolError for a body that is not JSON
            raise RedfishBadResponse(self.device, "body is not JSON", path, status) from exc
        if not isinstance(body, dict):
            raise RedfishBadResponse(self.device, "body is not a JSON object", path, status)
        return body

    async def reset(self) -> None:
        """Deletes our session (if any) and drops the connection; the next `get` logs in again."""
        client, self._client = self._client, None
        if client is not None and self._logged_in:
            try:
                await client.logout()
                self.sessions_deleted += 1
            except (LibraryError, aiohttp.ClientError) as exc:
                log.warning("%s: could not delete Redfish session: %s", self.device, type(exc).__name__)
        self._logged_in = False
        await self._close_http()

    async def _close_http(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def aclose(self) -> None:
        await self.reset()
