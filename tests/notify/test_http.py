"""HttpPoster against real local peers: what the HTTP seam guarantees whatever client library it uses.

Redirects are not followed, a silent peer times out, a closed port is retryable, error texts lose the
URL's query and every secret, and one poster reuses its connections instead of opening one per POST.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from hub.notify.errors import PermanentNotifyError, RetryableNotifyError
from hub.notify.http import HttpPoster
from tests.notify.recorder import Recorder
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

SECRET = "tok-5e5e-never-logged"


class CountingServer:
    """An HTTP/1.1 keep-alive peer on 127.0.0.1 that answers 204 and counts the connections it accepted."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                self.requests += 1
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def counting() -> AsyncIterator[CountingServer]:
    server = CountingServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def poster() -> AsyncIterator[HttpPoster]:
    p = HttpPoster("pager", timeout_s=2.0)
    p.add_secrets([SECRET])
    try:
        yield p
    finally:
        await p.aclose()


async def test_a_redirect_is_not_followed_and_is_a_permanent_error_naming_the_status(
    poster: HttpPoster, recorder: Recorder
) -> None:
    recorder.answer("/hook", 302, headers={"Location": recorder.url("/elsewhere")})
    with pytest.raises(PermanentNotifyError) as err:
        await poster.post(recorder.url("/hook"), b"{}", {"Content-Type": "application/json"})
    assert err.value.status == 302
    assert [r.path for r in recorder.requests()] == ["/hook"]


async def test_a_peer_that_never_answers_times_out_as_retryable_within_the_bound(recorder: Recorder) -> None:
    recorder.hang("/hook", seconds=30)
    p = HttpPoster("pager", timeout_s=0.3)
    try:
        t0 = time.monotonic()
        with pytest.raises(RetryableNotifyError, match=r"pager: POST http://127\.0\.0\.1:\d+/hook timed out"):
            await p.post(recorder.url("/hook"), b"{}", {})
        assert time.monotonic() - t0 < 2.0
    finally:
        await p.aclose()


async def test_a_closed_port_is_retryable_and_the_error_has_no_query_or_secret(poster: HttpPoster) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook?token={SECRET}"
    with pytest.raises(RetryableNotifyError) as err:
        await poster.post(url, b"{}", {"Authorization": f"Bearer {SECRET}"})
    text = str(err.value)
    assert err.value.status is None
    assert text.startswith("pager: POST http://127.0.0.1:")
    assert "/hook failed: " in text
    assert SECRET not in text and "token=" not in text


async def test_a_503_with_retry_after_is_retryable_and_echoed_secrets_are_scrubbed(
    poster: HttpPoster, recorder: Recorder
) -> None:
    recorder.answer("/hook", 503, headers={"Retry-After": "7"}, body=f"bad token {SECRET}".encode())
    with pytest.raises(RetryableNotifyError) as err:
        await poster.post(recorder.url("/hook"), b"{}", {})
    assert (err.value.status, err.value.retry_after_s) == (503, 7.0)
    assert str(err.value).endswith("answered 503: bad token <redacted>")


async def test_one_poster_reuses_its_connections_for_many_posts(
    poster: HttpPoster, counting: CountingServer
) -> None:
    url = f"http://127.0.0.1:{counting.port}/hook"
    for _ in range(3):
        await asyncio.gather(*(poster.post(url, b'{"n":1}', {}) for _ in range(4)))
    assert counting.requests == 12
    assert counting.connections <= 4
    await poster.aclose()
    await poster.aclose()  # safe twice
