"""A small real Redfish BMC for the session and back-off tests: HTTPS on 127.0.0.1, an aiohttp web app.

sushy-static has no authentication and sushy-emulator has no SessionService, so neither can show a
session being created once, reused and DELETEd. This server serves a mockup tree from fixtures/redfish
behind a working SessionService (X-Auth-Token sessions, or basic auth per request), answers chosen
paths with 503/429 or stalls them, answers `$expand` (`.` with `$levels`) as a service advertising
ExpandQuery would, and records every request it was sent.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import ssl
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

SESSIONS = "/redfish/v1/SessionService/Sessions"


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it: `auth` is "token", "basic" or "none"."""

    method: str
    path: str
    auth: str
    query: str = ""


@dataclass(frozen=True)
class Fault:
    """The answer for one request to a path: an HTTP status (with Retry-After if given), or a stall."""

    status: int = 0
    retry_after: str | None = None
    stall: bool = False


@dataclass
class BmcServer:
    tree: Path
    username: str
    password: str
    tls: tuple[Path, Path]
    seen: list[Seen] = field(default_factory=list)
    sessions: dict[str, str] = field(default_factory=dict)  # token -> session id
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    url: str = ""

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def fail(self, path: str, *faults: Fault) -> None:
        """Queues answers for the next requests to `path` (then it is served normally again)."""
        self.faults.setdefault(path, deque()).extend(faults)

    def requests(self, method: str = "GET") -> list[str]:
        return [s.path for s in self.seen if s.method == method]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"https://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._released.set()  # stalled handlers return so the runner can shut down
        if self._runner is not None:
            await self._runner.cleanup()

    def _auth(self, request: web.Request) -> str:
        token = request.headers.get("X-Auth-Token")
        if token is not None:
            return "token" if token in self.sessions else "bad"
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return "basic" if header[6:] == expected else "bad"
        return "none"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path, auth = request.path.rstrip("/"), self._auth(request)
        self.seen.append(Seen(request.method, path, auth, request.query_string))
        queued = self.faults.get(path)
        if queued:
            fault = queued.popleft()
            if fault.stall:
                await self._released.wait()
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.json_response({"error": "busy"}, status=fault.status or 503, headers=headers)
        if path == "/redfish/v1":
            root = self._resource(path) or {}
            return web.json_response({**root, "Links": {"Sessions": {"@odata.id": SESSIONS}}})
        if path == SESSIONS and request.method == "POST":
            return await self._login(request)
        if auth not in ("token", "basic"):
            return web.json_response({"error": "unauthorized"}, status=401)
        if path == SESSIONS:
            members = [{"@odata.id": f"{SESSIONS}/{sid}"} for sid in self.sessions.values()]
            return web.json_response({"Members": members, "Members@odata.count": len(members)})
        if path.startswith(SESSIONS + "/") and request.method == "DELETE":
            sid = path.rsplit("/", 1)[1]
            for token, known in list(self.sessions.items()):
                if known == sid:
                    del self.sessions[token]
                    return web.Response(status=204)
            return web.json_response({"error": "no such session"}, status=404)
        body = self._resource(path)
        if body is None:
            return web.json_response({"error": "not found"}, status=404)
        if "$expand" in request.query:
            levels = re.search(r"\$levels=(\d+)", request.query["$expand"])
            body = self._expanded(body, int(levels.group(1)) if levels else 1)
        return web.json_response(body)

    def _expanded(self, body: dict[str, object], levels: int) -> dict[str, object]:
        """`body` with every link outside `Links` replaced by its resource, `levels` deep."""
        if levels <= 0:
            return body

        def expand(ref: object) -> object:
            if isinstance(ref, dict) and set(ref) == {"@odata.id"}:
                target = self._resource(str(ref["@odata.id"]).rstrip("/"))
                return ref if target is None else self._expanded(target, levels - 1)
            return ref

        return {
            k: x if k == "Links" else [expand(m) for m in x] if isinstance(x, list) else expand(x)
            for k, x in body.items()
        }

    async def _login(self, request: web.Request) -> web.StreamResponse:
        creds = await request.json()
        if (creds.get("UserName"), creds.get("Password")) != (self.username, self.password):
            return web.json_response({"error": "bad credentials"}, status=401)
        sid = str(next(self._ids))
        token = f"token-{sid}"
        self.sessions[token] = sid
        location = f"{SESSIONS}/{sid}"
        return web.json_response(
            {"@odata.id": location, "Id": sid},
            status=201,
            headers={"X-Auth-Token": token, "Location": location},
        )

    def _resource(self, path: str) -> dict[str, object] | None:
        rel = path.removeprefix("/redfish/v1").strip("/")
        file = self.tree / rel / "index.json"
        return json.loads(file.read_text()) if file.is_file() else None
