"""`hub.http_client` against a real HTTP server on 127.0.0.1: size caps however the answer is framed
(declared length, chunked, gzip that inflates), redirects not followed, the caller's User-Agent, lines
streamed with a max size, error kinds and texts without query or secrets, and many requests at once."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub import http_client
from hub.http_client import HttpError, Session
from hub.notify.errors import RetryableNotifyError
from hub.notify.http import HttpPoster
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-token"
CAP = 1000


class Handler(BaseHTTPRequestHandler):
    """Answers by path: /echo (the request's User-Agent and body), /big and /big500 (a declared length
    over the cap), /chunked (over the cap, no length), /gzip (small on the wire, over the cap inflated),
    /redirect, /lines (NDJSON with one over-long line), /denied (401 echoing the secret), /slow (never
    ends)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet: pytest captures stderr noise as failures
        pass

    def do_POST(self) -> None:  # noqa: N802 (stdlib naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        if path == "/echo":
            self._answer(200, f"{self.headers['User-Agent']}|".encode() + body)
        elif path in ("/big", "/big500"):
            self._answer(200 if path == "/big" else 500, b"x" * (CAP + 1))
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(4):
                self.wfile.write(b"190\r\n" + b"y" * 400 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/gzip":
            self._answer(200, gzip.compress(b"z" * (CAP * 10)), (("Content-Encoding", "gzip"),))
        elif path == "/redirect":
            self._answer(302, b"", (("Location", "/echo"),))
        elif path == "/lines":
            self._answer(200, b'{"a":1}\n' + b"q" * 300 + b'\n{"b":2}\n{"c":3}')
        elif path == "/denied":
            self._answer(401, f"bad token {SECRET}".encode(), (("Retry-After", "3"),))
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"a")
            self.wfile.flush()
            threading.Event().wait(5)

    def _answer(self, status: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the concurrency test opens 64 connections at once (the default is 5)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    s = http_client.new_session(2.0, "outpost-test/1")
    try:
        yield s
    finally:
        await s.close()


async def _post(session: Session, url: str, total_s: float = 5.0) -> http_client.Response:
    return await http_client.post(session, url, {}, data=b"ping", total_s=total_s, max_bytes=CAP)


async def test_an_answer_is_returned_whole_with_the_callers_user_agent(session: Session, server: str) -> None:
    resp = await _post(session, f"{server}/echo")
    assert (resp.status, resp.body) == (200, b"outpost-test/1|ping")
    assert resp.headers["content-length"] == str(len(resp.body))  # names stay case-insensitive


@pytest.mark.parametrize("path", ["/big", "/chunked", "/gzip"])
async def test_an_answer_over_the_cap_is_too_large_however_it_is_framed(
    session: Session, server: str, path: str
) -> None:
    with pytest.raises(HttpError) as err:
        await _post(session, f"{server}{path}")
    assert (err.value.kind, err.value.status) == ("too_large", 200)
    assert str(err.value) == f"POST {server}{path} answered 200 longer than {CAP} bytes"


async def test_a_redirect_is_an_answer_not_followed(session: Session, server: str) -> None:
    resp = await _post(session, f"{server}/redirect")
    assert (resp.status, resp.headers["Location"]) == (302, "/echo")


async def test_a_closed_port_is_a_connect_error_without_query_or_userinfo(session: Session) -> None:
    port = free_port()
    with pytest.raises(HttpError) as err:
        await _post(session, f"http://user:{SECRET}@127.0.0.1:{port}/hook?token={SECRET}")
    text = str(err.value)
    assert err.value.kind == "connect" and err.value.status is None
    assert text.startswith(f"POST http://127.0.0.1:{port}/hook failed: ")
    assert SECRET not in text and "token=" not in text


async def test_a_trickling_answer_times_out_within_the_total_bound(session: Session, server: str) -> None:
    with pytest.raises(HttpError) as err:
        await asyncio.wait_for(_post(session, f"{server}/slow", total_s=0.3), 3)
    assert err.value.kind == "timeout"
    assert str(err.value) == f"POST {server}/slow timed out after 0.3s"


async def test_lines_stream_with_an_over_long_one_dropped(session: Session, server: str) -> None:
    stream = http_client.post_lines(session, f"{server}/lines", {"q": "x"}, {}, total_s=5, max_line_bytes=100)
    assert [line async for line in stream] == [b'{"a":1}', None, b'{"b":2}', b'{"c":3}']


async def test_a_refused_stream_is_a_status_error_with_retry_after_and_secrets_scrubbed(
    session: Session, server: str
) -> None:
    stream = http_client.post_lines(
        session, f"{server}/denied", {}, {}, total_s=5, max_line_bytes=100, secrets=[SECRET]
    )
    with pytest.raises(HttpError) as err:
        _ = [line async for line in stream]
    assert (err.value.kind, err.value.status, err.value.retry_after_s) == ("status", 401, 3.0)
    assert str(err.value) == f"POST {server}/denied answered 401: bad token <redacted>"


async def test_notify_judges_an_answer_over_its_cap_by_the_status_alone(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hub.notify.http._MAX_ANSWER_BYTES", CAP)
    poster = HttpPoster("pager", timeout_s=2)
    try:
        assert await poster.post(f"{server}/big", b"{}", {}) == 200  # delivered
        assert await poster.post(f"{server}/chunked", b"{}", {}) == 200
        with pytest.raises(RetryableNotifyError) as err:
            await poster.post(f"{server}/big500", b"{}", {})
        assert err.value.status == 500
        assert str(err.value) == f"pager: POST {server}/big500 answered 500 longer than {CAP} bytes"
    finally:
        await poster.aclose()


async def test_many_requests_at_once_on_one_session_each_get_their_own_answer(
    session: Session, server: str
) -> None:
    async def one(i: int) -> bytes:
        resp = await http_client.post(
            session, f"{server}/echo", {}, data=str(i).encode(), total_s=5, max_bytes=CAP
        )
        return resp.body

    bodies = await asyncio.gather(*(one(i) for i in range(64)))
    assert bodies == [f"outpost-test/1|{i}".encode() for i in range(64)]
