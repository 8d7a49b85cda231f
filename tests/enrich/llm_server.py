"""A real local OpenAI-compatible chat server for the LLM tests: records every request it receives (body,
headers, arrival and answer times) and answers per `mode`, after `delay_s` when told to be slow.

A stdlib `ThreadingHTTPServer` in a thread of its own, so it answers whatever the test's event loop does.
A test holds every answer by clearing `release` (requests still arrive and are counted in `arrived`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

ANSWER = '{"summary": "s", "probable_cause": "c", "suggested_actions": [], "confidence": 0.5}'


@dataclass(frozen=True)
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival
    answered_at: float

    @property
    def prompt(self) -> str:
        return str(self.body["messages"][1]["content"])


class FakeLlm(ThreadingHTTPServer):
    """`/v1/chat/completions` answering per `mode`: ok, slow, 429, class, badjson, garbage, huge, or an
    `answer` text of the test's own."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.answer = ANSWER
        self.delay_s = 0.0
        self.release = threading.Event()
        self.release.set()
        self.arrived = 0
        self.received: list[Received] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.received]

    @property
    def headers_seen(self) -> list[dict[str, str]]:
        with self.lock:
            return [r.headers for r in self.received]


class _Handler(BaseHTTPRequestHandler):
    server: FakeLlm

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        at = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode = self.server.mode
        with self.server.lock:
            self.server.arrived += 1
        self.server.release.wait(30)
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        with self.server.lock:
            self.server.received.append(Received(body, dict(self.headers), at, time.monotonic()))
        if mode == "slow":
            time.sleep(1.0)
            self._send(200, b"{}", {})
        elif mode == "429":
            self._send(429, b"{}", {"Retry-After": "120"})
        elif mode == "class":
            out = {"choices": [{"message": {"content": '{"severity": "error", "category": "storage"}'}}]}
            self._send(200, json.dumps(out).encode(), {})
        elif mode == "badjson":
            out = {"choices": [{"message": {"content": "I think the disk is full"}}]}
            self._send(200, json.dumps(out).encode(), {})
        elif mode == "huge":
            self._send(200, b" " * (2 << 20), {})
        elif mode == "garbage":
            self._send(200, b"<html>", {})
        else:
            out = {"choices": [{"message": {"content": self.server.answer}}], "usage": {"total_tokens": 100}}
            self._send(200, json.dumps(out).encode(), {})

    def _send(self, code: int, data: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout, size bound): nothing left to tell it
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    server = FakeLlm()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()  # held answers go out, so the handler threads end
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
