"""The webhook receiver against a real local HTTP server: format, signature, retries, dead letters, secrets.

Each dispatcher here runs on a real SQLite outbox; every request is one the recorder really received.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import sqlalchemy as sa

from hub.notify.config import NotifyConfig
from hub.notify.dispatcher import Dispatcher
from hub.notify.models import notify_outbox
from tests.notify.conftest import note
from tests.notify.recorder import Recorder

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-signing-key-7f1d"
HEADER_TOKEN = "hdr-token-9a8b7c"

DispatcherFactory = Callable[..., Dispatcher]


@pytest.fixture
async def dispatchers(engine: sa.Engine) -> AsyncIterator[DispatcherFactory]:
    """Builds started dispatchers on the test's outbox and closes them all at the end."""
    made: list[Dispatcher] = []

    def make(*receivers: dict[str, Any], **top: Any) -> Dispatcher:
        cfg = NotifyConfig.model_validate({"receivers": list(receivers), "poll_interval_s": 0.2, **top})
        d = Dispatcher(engine, cfg, owner="test-hub")
        made.append(d)
        return d

    try:
        yield make
    finally:
        for d in made:
            await d.aclose()


def webhook(rec: Recorder, name: str = "pager", path: str = "/hook", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "webhook",
        "name": name,
        "url": rec.url(path),
        "secret": SECRET,
        "timeout_s": 2,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.2,
        **extra,
    }


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_webhook_body_is_alertmanager_format_and_the_signature_verifies_with_the_secret(
    recorder: Recorder, dispatchers: DispatcherFactory
) -> None:
    d = dispatchers(webhook(recorder), external_url="https://hub.example")
    await d.start()
    n = note(1)
    assert d.submit(n) is True
    (req,) = await recorder.until(1)

    ts = req.headers["x-outpost-timestamp"]
    expected = hmac.new(SECRET.encode(), ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-outpost-signature"] == f"sha256={expected}"
    assert abs(int(ts) - time.time()) < 5
    assert req.headers["idempotency-key"] == "n-pager-1"
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {
        "version": "4",
        "groupKey": '{}:{alertname="A1"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "pager",
        "groupLabels": {"alertname": "A1"},
        "commonLabels": {"alertname": "A1", "device": "sw1", "severity": "critical"},
        "commonAnnotations": {"summary": "A1 on dc1"},
        "externalURL": "https://hub.example",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "A1", "device": "sw1", "severity": "critical"},
                "annotations": {"summary": "A1 on dc1"},
                "startsAt": "2027-01-15T08:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://hub.example/alerts/1",
                "fingerprint": "fp-A1",
            }
        ],
    }
    # A tampered body does not verify.
    forged = hmac.new(SECRET.encode(), ts.encode() + b"." + req.body + b" ", hashlib.sha256).hexdigest()
    assert forged != expected
    await until(lambda: d.stats.snapshot().sent == {"pager": 1})


async def test_500s_are_retried_with_growing_backoff_and_stop_at_the_deadline_as_one_dead_letter(
    recorder: Recorder, dispatchers: DispatcherFactory
) -> None:
    recorder.answer("/hook", 500, times=None, body=b"upstream broken")
    d = dispatchers(webhook(recorder, deadline_s=1.5, backoff_base_s=0.1, backoff_cap_s=0.4))
    await d.start()
    started = time.monotonic()
    assert d.submit(note(1))
    await until(lambda: d.stats.snapshot().dead_lettered == {("pager", "deadline"): 1}, timeout=5)
    elapsed = time.monotonic() - started
    reqs = recorder.requests("/hook")
    snap = d.stats.snapshot()

    assert elapsed < 1.5 + 0.5
    assert len(reqs) >= 3
    assert snap.retried == {"pager": len(reqs) - 1}
    assert snap.sent == {}
    # Every attempt carries the same idempotency key.
    assert {r.headers["idempotency-key"] for r in reqs} == {"n-pager-1"}
    await asyncio.sleep(0.3)
    assert len(recorder.requests("/hook")) == len(reqs)  # nothing after the dead letter
    (dead,) = await d.dead_letters()
    assert (dead.receiver, dead.id, dead.reason, dead.attempts) == (
        "pager",
        "n-pager-1",
        "deadline",
        len(reqs),
    )
    assert dead.last_error == f"pager: POST {recorder.url('/hook')} answered 500: upstream broken"


async def test_a_400_is_dead_lettered_at_once_after_one_request(
    recorder: Recorder, dispatchers: DispatcherFactory
) -> None:
    recorder.answer("/hook", 400, times=None, body=b"bad payload")
    d = dispatchers(webhook(recorder))
    await d.start()
    assert d.submit(note(1))
    await until(lambda: d.stats.snapshot().dead_lettered == {("pager", "permanent"): 1})
    await asyncio.sleep(0.3)
    assert len(recorder.requests("/hook")) == 1
    assert d.stats.snapshot().retried == {}
    (dead,) = await d.dead_letters("pager")
    assert (dead.reason, dead.attempts) == ("permanent", 1)
    assert "answered 400: bad payload" in dead.last_error


async def test_429_retry_after_is_honoured_before_the_next_attempt(
    recorder: Recorder, dispatchers: DispatcherFactory
) -> None:
    recorder.answer("/hook", 429, times=1, headers={"Retry-After": "1"})
    d = dispatchers(webhook(recorder, backoff_base_s=0.01, backoff_cap_s=0.02))
    await d.start()
    assert d.submit(note(1))
    first, second = await recorder.until(2, "/hook", timeout=5)
    await until(lambda: d.stats.snapshot().sent == {"pager": 1})
    assert second.at - first.at >= 1.0
    assert d.stats.snapshot().retried == {"pager": 1}


async def test_a_hanging_receiver_blocks_neither_submit_nor_another_receiver(
    recorder: Recorder, dispatchers: DispatcherFactory
) -> None:
    recorder.hang("/stuck", seconds=30)
    d = dispatchers(
        webhook(recorder, name="stuck", path="/stuck", timeout_s=20, concurrency=2),
        webhook(recorder, name="pager", path="/hook"),
    )
    await d.start()
    for i in range(10):  # more than the stuck receiver's workers
        assert d.submit(note(i, "stuck"))
    await recorder.until(2, "/stuck")
    t = time.monotonic()
    for i in range(50):
        assert d.submit(note(i, "pager"))
    assert time.monotonic() - t < 0.05  # submit never waits
    await recorder.until(50, "/hook", timeout=5)
    await until(lambda: d.stats.snapshot().sent == {"pager": 50})
    assert len(recorder.requests("/stuck")) == 2  # one per worker, both still held


async def test_the_secret_never_reaches_logs_or_the_dead_letter_text(
    recorder: Recorder, dispatchers: DispatcherFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # A peer that echoes what it got (the signing secret, a token header) in its error body.
    echo = f"rejected: token={HEADER_TOKEN} key={SECRET}".encode()
    recorder.answer("/hook", 503, times=2, body=echo)
    recorder.answer("/hook", 401, times=1, body=echo)
    caplog.set_level(logging.DEBUG)
    d = dispatchers(webhook(recorder, headers={"X-Api-Token": HEADER_TOKEN}))
    await d.start()
    assert d.submit(note(1))
    await until(lambda: d.stats.snapshot().dead_lettered == {("pager", "permanent"): 1})
    reqs = recorder.requests("/hook")
    assert [r.headers["x-api-token"] for r in reqs] == [HEADER_TOKEN] * 3
    (dead,) = await d.dead_letters()
    assert "answered 401: rejected: token=<redacted> key=<redacted>" in dead.last_error
    rows = await asyncio.to_thread(_all_text, d)
    logged = caplog.text
    assert "receiver 'pager' down" in logged  # the outage was logged, once
    assert logged.count("receiver 'pager' down") == 1
    for secret in (SECRET, HEADER_TOKEN):
        assert secret not in logged
        assert secret not in dead.last_error
        assert secret not in rows
        assert secret not in repr(d._config)


def _all_text(d: Dispatcher) -> str:
    with d.outbox._engine.connect() as conn:
        return json.dumps([list(map(str, r)) for r in conn.execute(sa.select(notify_outbox)).all()])
