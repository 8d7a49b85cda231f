"""A real HTTP receiver on 127.0.0.1 for notify tests: records every request, answers as it is told.

Runs a stdlib `ThreadingHTTPServer` in a thread of its own, so it keeps answering whatever the test's
event loop is doing, and so can a peer process (Alertmanager) post to it. Per path it can be told to
answer a status N times (500, 429 with Retry-After, 400 ...), or to hang; anything unplanned gets 200.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival
    status: int = 0  # what the recorder answered (or will answer, for a hanging request)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Plan:
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    hang_s: float = 0.0


class _Server(ThreadingHTTPServer):
    # A hub opens a connection per concurrent send at once (32 by default): the stdlib's listen backlog
    # of 5 dropped the SYNs over it, and those sends came in a second late (TCP's first retransmit).
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sender that hung up before its answer (its timeout, which the slow-receiver tests provoke)
        is expected, so it prints no traceback; anything else still does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Recorder:
    """Start with `start()`, stop with `stop()` (a fixture does both)."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._plans: dict[str, deque[_Plan]] = defaultdict(deque)
        self._always: dict[str, _Plan] = {}
        self._stopping = threading.Event()
        self._arrived = threading.Condition(self._lock)
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
            timeout = 10

            def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                plan = recorder._record(
                    Recorded(
                        "POST", path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                    )
                )
                if plan.hang_s:
                    recorder._stopping.wait(plan.hang_s)
                self.send_response(plan.status)
                for k, v in plan.headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(plan.body)))
                self.end_headers()
                self.wfile.write(plan.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.port = int(self._server.server_address[1])
        # A short poll so stop() returns at once (shutdown waits for serve_forever's next poll).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- what to answer ------------------------------------------------------------------------------

    def answer(
        self,
        path: str,
        status: int,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """The next `times` requests to `path` get `status` (every one from now on when times is None)."""
        plan = _Plan(status, tuple((headers or {}).items()), body)
        with self._lock:
            if times is None:
                self._always[path] = plan
            else:
                self._plans[path].extend([plan] * times)

    def hang(self, path: str, seconds: float = 60.0) -> None:
        """Every request to `path` is held `seconds` (or until stop) before its 200."""
        with self._lock:
            self._always[path] = _Plan(hang_s=seconds)

    def reset(self, path: str) -> None:
        """`path` answers 200 again (requests already held keep waiting until stop)."""
        with self._lock:
            self._always.pop(path, None)
            self._plans.pop(path, None)

    def _record(self, r: Recorded) -> _Plan:
        with self._lock:
            plan = self._plans[r.path].popleft() if self._plans[r.path] else self._always.get(r.path, _Plan())
            self._requests.append(dataclasses.replace(r, status=plan.status))
            self._arrived.notify_all()
            return plan

    # -- what arrived --------------------------------------------------------------------------------

    def requests(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> list[Recorded]:
        """Blocks until `count` requests (to `path`) arrived; fails with what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                got = [r for r in self._requests if path is None or r.path == path]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(got)} of {count} requests to {path or 'any path'} arrived")
                self._arrived.wait(left)

    async def until(self, count: int, path: str | None = None, timeout: float = 10.0) -> list[Recorded]:
        """`wait_for` for async tests: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.requests(path)
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} of {count} requests to {path or 'any path'} arrived")
            await asyncio.sleep(0.02)
