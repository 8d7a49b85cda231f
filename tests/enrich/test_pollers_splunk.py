"""The Splunk poller against a real local server implementing `POST /services/search/jobs/export`
(form body, token auth, newline-delimited JSON streamed newest first), storing through the hub's real
log intake on SQLite: malformed and over-long lines counted and skipped, the token sent and never
logged, and a restart resuming after the stored window with the overlap's lines skipped by id."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from hub.enrich.logs.pollers.config import SplunkPollerConfig
from hub.enrich.logs.pollers.job import LogPollers
from hub.enrich.logs.pollers.metrics import PollerMetrics
from hub.enrich.logs.store import LogQuery
from hub.store.base import TIME_MAX_MS
from shared.clock import SystemClock
from tests.enrich.log_sources import SPLUNK_TOKEN, FakeSplunk, Intake, serving

pytestmark = pytest.mark.integration

AGENT = "poll:sp"


@pytest.fixture
def splunk() -> Iterator[FakeSplunk]:
    with serving(FakeSplunk()) as server:
        assert isinstance(server, FakeSplunk)
        yield server


def _config(url: str, **over: Any) -> SplunkPollerConfig:
    fields: dict[str, Any] = {
        "kind": "splunk",
        "name": "sp",
        "url": url,
        "query": "index=main sourcetype=syslog",
        "token": SPLUNK_TOKEN,
        "interval_s": 60,  # one poll per start: each test counts what one stream held
        "lag_s": 0,
        "max_line_bytes": 1024,
        "batch_lines": 3,
        "backoff_base_s": 0.05,
    }
    return SplunkPollerConfig.model_validate(fields | over)


@asynccontextmanager
async def _polling(
    cfg: SplunkPollerConfig, intake: Intake, metrics: PollerMetrics, tmp: Path
) -> AsyncIterator[None]:
    job = LogPollers([cfg], intake.intake, metrics, tmp / "pollers", SystemClock())
    await job.start()
    try:
        yield
    finally:
        await job.aclose()


async def _until(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _results(server: FakeSplunk, n: int, first: int = 0, ago_s: float = 60, step_ms: int = 1000) -> list[str]:
    base = int(time.time() * 1000) - int(ago_s * 1000)
    raws = [
        f"Dec  2 10:00:{first + i:02d} db-1 postgres[42]: checkpoint {first + i} complete" for i in range(n)
    ]
    for i, raw in enumerate(raws):
        server.add(base + i * step_ms, raw, **({"log_level": "ERROR"} if i == 2 else {}))
    return raws


async def test_streamed_results_are_stored_once_and_malformed_and_overlong_lines_are_counted_and_skipped(
    splunk: FakeSplunk, intake: Intake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raws = _results(splunk, 8)
    splunk.extra_lines = [b"not json", b'{"preview":false,"result":', b"[1, 2]", b"x" * 5000, b""]
    metrics = PollerMetrics(intake.metrics.registry)
    before_ms = int(time.time() * 1000)
    state = tmp_path / "pollers" / "sp.json"
    async with _polling(_config(splunk.url), intake, metrics, tmp_path):
        await _until(lambda: state.exists() and b'"window":null' in state.read_bytes(), "the window read")
    assert intake.messages(AGENT) == raws  # all once, oldest first by time although streamed newest first
    (req,) = splunk.requests()
    assert req.path == "/services/search/jobs/export"
    assert req.headers["Authorization"] == f"Bearer {SPLUNK_TOKEN}"
    assert req.body["search"] == "search index=main sourcetype=syslog"
    assert req.body["output_mode"] == "json"
    earliest, latest = float(req.body["earliest_time"]), float(req.body["latest_time"])
    assert before_ms / 1000 - 900 - 1 <= earliest < latest and latest - earliest == pytest.approx(900, abs=1)
    assert intake.sample("outpost_hub_log_poller_errors_total", poller="sp", kind="malformed") == 3
    assert intake.sample("outpost_hub_log_poller_errors_total", poller="sp", kind="too_long") == 1
    assert intake.sample("outpost_hub_log_poller_lines_total", poller="sp") == 8
    assert intake.sample("outpost_hub_log_poller_pages_total", poller="sp") == 3  # stored 3 + 3 + 2
    lines = intake.logs.search(LogQuery(0, TIME_MAX_MS, 100, agent=AGENT)).lines
    error = next(line for line in lines if line.message == raws[2])
    assert (error.severity, error.host, error.device, error.app) == (3, "db-1", "db-1", "syslog")
    assert SPLUNK_TOKEN not in caplog.text


async def test_lines_split_across_small_network_reads_are_put_back_together(
    splunk: FakeSplunk, intake: Intake, tmp_path: Path
) -> None:
    raws = _results(splunk, 6)
    splunk.extra_lines = [b"y" * 3000]
    splunk.piece_bytes = 97
    metrics = PollerMetrics(intake.metrics.registry)
    state = tmp_path / "pollers" / "sp.json"
    async with _polling(_config(splunk.url), intake, metrics, tmp_path):
        await _until(lambda: state.exists() and b'"window":null' in state.read_bytes(), "the window read")
    assert intake.messages(AGENT) == raws
    assert intake.sample("outpost_hub_log_poller_errors_total", poller="sp", kind="too_long") == 1
    assert intake.sample("outpost_hub_log_poller_errors_total", poller="sp", kind="malformed") == 0


async def test_a_search_error_message_in_the_stream_fails_the_poll_and_keeps_the_window(
    splunk: FakeSplunk, intake: Intake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _results(splunk, 4)
    splunk.extra_lines = [
        b'{"messages":[{"type":"FATAL","text":"Error in \'search\' command: Unable to parse"}]}'
    ]
    metrics = PollerMetrics(intake.metrics.registry)
    cfg = _config(splunk.url, backoff_cap_s=0.1, batch_lines=2)  # the first 2 stored before the error
    async with _polling(cfg, intake, metrics, tmp_path):
        failed = lambda: intake.sample("outpost_hub_log_poller_errors_total", poller="sp", kind="search")  # noqa: E731
        await _until(lambda: failed() >= 2, "two failed searches")
        splunk.extra_lines = []
        await _until(lambda: len(intake.messages(AGENT)) == 4, "4 lines once the search passes")
    assert len(set(intake.messages(AGENT))) == 4  # the 2 stored before each failure were skipped after
    assert intake.sample("outpost_hub_log_poller_duplicates_total", poller="sp") >= 2
    downs = [r.getMessage() for r in caplog.records if "down:" in r.getMessage()]
    assert len(downs) == 1 and "splunk search failed: Error in 'search' command" in downs[0]


async def test_a_wrong_token_is_an_auth_error_logged_once_without_the_token(
    splunk: FakeSplunk, intake: Intake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _results(splunk, 2)
    metrics = PollerMetrics(intake.metrics.registry)
    cfg = _config(splunk.url, token="wrong-token-77", backoff_cap_s=0.1)
    async with _polling(cfg, intake, metrics, tmp_path):
        await _until(lambda: len(splunk.requests()) >= 3, "three refused polls")
    assert intake.messages(AGENT) == []
    assert splunk.requests()[0].headers["Authorization"] == "Bearer wrong-token-77"
    assert intake.sample("outpost_hub_log_poller_errors_total", poller="sp", kind="auth") >= 3
    downs = [r.getMessage() for r in caplog.records if "down:" in r.getMessage()]
    assert len(downs) == 1 and "answered 401" in downs[0]
    assert "wrong-token-77" not in caplog.text


async def test_restart_resumes_after_the_stored_window_and_skips_the_overlap_by_event_id(
    splunk: FakeSplunk, intake: Intake, tmp_path: Path
) -> None:
    raws = _results(splunk, 5)
    metrics = PollerMetrics(intake.metrics.registry)
    cfg = _config(splunk.url)
    state = tmp_path / "pollers" / "sp.json"
    async with _polling(cfg, intake, metrics, tmp_path):
        await _until(lambda: state.exists() and b'"window":null' in state.read_bytes(), "the window finished")
    assert state.stat().st_mode & 0o777 == 0o600
    await asyncio.sleep(1.2)
    more = _results(splunk, 4, first=5, ago_s=1.0, step_ms=100)  # after the stored window's end
    async with _polling(cfg, intake, metrics, tmp_path):
        await _until(lambda: len(intake.messages(AGENT)) == 9, "9 lines stored")
        await _until(lambda: b'"window":null' in state.read_bytes(), "the second window finished")
    assert intake.messages(AGENT) == raws + more
    first, second = splunk.requests()
    # The second window starts overlap_s before the first ended: its first 5 lines come again, skipped.
    assert float(second.body["earliest_time"]) == pytest.approx(
        float(first.body["latest_time"]) - 120, abs=0.002
    )
    assert intake.sample("outpost_hub_log_poller_duplicates_total", poller="sp") == 5
    assert intake.sample("outpost_hub_logs_stored_total") == 9


async def test_index_time_windows_ask_with_index_earliest_and_index_latest(
    splunk: FakeSplunk, intake: Intake, tmp_path: Path
) -> None:
    raws = _results(splunk, 3)
    metrics = PollerMetrics(intake.metrics.registry)
    cfg = _config(splunk.url, window_on="_indextime", auth_scheme="Splunk", query="| search index=main")
    async with _polling(cfg, intake, metrics, tmp_path):
        await _until(lambda: len(intake.messages(AGENT)) == 3, "3 lines stored")
    assert intake.messages(AGENT) == raws
    (req,) = splunk.requests()
    assert {"index_earliest", "index_latest"} <= req.body.keys() and "earliest_time" not in req.body
    assert req.body["search"] == "| search index=main"
    assert req.headers["Authorization"] == f"Splunk {SPLUNK_TOKEN}"
