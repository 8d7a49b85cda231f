"""The Datadog Logs poller against a real local server implementing `POST /api/v2/logs/events/search`
(cursor pages, keys, rate-limit headers, 429), storing through the hub's real log intake on SQLite:
every line once across pages, polls and restarts (a crash between a page's store and its cursor save
included), rate limits waited out and counted, secrets never logged."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from hub.config import HubConfig
from hub.enrich.logs.config import LogsConfig
from hub.enrich.logs.pollers.config import DatadogPollerConfig
from hub.enrich.logs.pollers.job import SOURCES, LogPollers
from hub.enrich.logs.pollers.metrics import PollerMetrics
from hub.enrich.logs.store import LogQuery
from hub.store.base import TIME_MAX_MS
from shared.clock import SystemClock
from tests.enrich.log_sources import DD_API_KEY, DD_APP_KEY, FakeDatadog, Intake, serving

pytestmark = pytest.mark.integration

AGENT = "poll:dd"


@pytest.fixture
def datadog() -> Iterator[FakeDatadog]:
    with serving(FakeDatadog()) as server:
        assert isinstance(server, FakeDatadog)
        yield server


def _config(url: str, tmp_path: Path, **over: Any) -> DatadogPollerConfig:
    key_file = tmp_path / "dd-api-key"
    key_file.write_text(DD_API_KEY + "\n")
    fields: dict[str, Any] = {
        "kind": "datadog",
        "name": "dd",
        "url": url,
        "query": "service:shop",
        "indexes": ["main"],
        "page_limit": 10,
        "interval_s": 0.2,
        "lag_s": 0,
        "api_key_file": str(key_file),
        "application_key": DD_APP_KEY,
        "backoff_base_s": 0.05,
        "backoff_cap_s": 5,
    }
    return DatadogPollerConfig.model_validate(fields | over)


@asynccontextmanager
async def _polling(
    cfg: DatadogPollerConfig, intake: Intake, metrics: PollerMetrics, tmp: Path
) -> AsyncIterator[None]:
    job = LogPollers([cfg], intake.intake, metrics, tmp / "pollers", SystemClock())
    await job.start()
    try:
        yield
    finally:
        await job.aclose()
        await job.aclose()  # safe twice


async def _until(predicate: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _events(server: FakeDatadog, n: int, first: int = 0, ago_s: float = 60) -> list[str]:
    base = int(time.time() * 1000) - int(ago_s * 1000)
    messages = [f"order {first + i} paid by user u{(first + i) % 7}" for i in range(n)]
    for i, m in enumerate(messages):
        server.add(base + i * 1000, m, status="error" if i == 3 else "info")
    return messages


async def test_three_cursor_pages_store_every_line_once_with_the_documented_keys_body_and_mapping(
    datadog: FakeDatadog, intake: Intake, tmp_path: Path
) -> None:
    messages = _events(datadog, 25)
    metrics = PollerMetrics(intake.metrics.registry)
    async with _polling(_config(datadog.url, tmp_path), intake, metrics, tmp_path):
        await _until(lambda: len(intake.messages(AGENT)) == 25, "25 lines stored")
        await _until(lambda: len(datadog.requests()) >= 6, "later polls of the overlap")
    assert intake.messages(AGENT) == messages  # once each, in order, nothing lost
    first, second, third = datadog.requests()[:3]
    for r in (first, second, third):
        assert r.path == "/api/v2/logs/events/search"
        assert (r.headers["DD-API-KEY"], r.headers["DD-APPLICATION-KEY"]) == (DD_API_KEY, DD_APP_KEY)
        assert r.headers["Content-Type"] == "application/json"
        assert r.body["sort"] == "timestamp"
        assert r.body["filter"]["query"] == "service:shop" and r.body["filter"]["indexes"] == ["main"]
        assert r.body["filter"]["from"].endswith("Z") and r.body["page"]["limit"] == 10
    assert "cursor" not in first.body["page"]
    # Each next page asks with the previous answer's meta.page.after.
    assert (second.body["page"]["cursor"], third.body["page"]["cursor"]) == (
        datadog.cursor(10),
        datadog.cursor(20),
    )
    assert second.body["filter"] == first.body["filter"]  # one window, paged
    page = intake.logs.search(LogQuery(0, TIME_MAX_MS, 1000, agent=AGENT))
    error = next(line for line in page.lines if line.message == messages[3])
    assert (error.severity, error.host, error.device, error.app) == (3, "web-1", "web-1", "shop")
    assert {line.severity for line in page.lines} == {3, 6}
    assert intake.sample("outpost_hub_log_poller_lines_total", poller="dd") == 25
    assert intake.sample("outpost_hub_log_poller_pages_total", poller="dd") >= 4
    assert intake.sample("outpost_hub_log_poller_duplicates_total", poller="dd") > 0  # the overlap, skipped
    assert intake.sample("outpost_hub_logs_stored_total") == 25  # through the shared intake
    state = (tmp_path / "pollers" / "dd.json").stat()
    assert state.st_mode & 0o777 == 0o600


async def test_a_429_waits_for_x_ratelimit_reset_then_resumes_and_is_counted(
    datadog: FakeDatadog, intake: Intake, tmp_path: Path
) -> None:
    messages = _events(datadog, 5)
    datadog.answer_429, datadog.reset_s = 1, 1
    metrics = PollerMetrics(intake.metrics.registry)
    async with _polling(_config(datadog.url, tmp_path), intake, metrics, tmp_path):
        await _until(lambda: len(intake.messages(AGENT)) == 5, "5 lines stored")
    assert intake.messages(AGENT) == messages
    gap = datadog.arrivals[1] - datadog.arrivals[0]
    assert 0.9 <= gap < 3.0  # waited the reset, no longer
    assert datadog.requests()[1].body == datadog.requests()[0].body  # the same request again
    assert intake.sample("outpost_hub_log_poller_rate_limited_waits_total", poller="dd") == 1
    assert intake.sample("outpost_hub_log_poller_errors_total", poller="dd", kind="status") == 0


async def test_remaining_zero_holds_the_next_page_until_the_reset(
    datadog: FakeDatadog, intake: Intake, tmp_path: Path
) -> None:
    messages = _events(datadog, 12)
    datadog.remaining, datadog.reset_s = 0, 1
    metrics = PollerMetrics(intake.metrics.registry)
    async with _polling(_config(datadog.url, tmp_path), intake, metrics, tmp_path):
        await _until(lambda: len(intake.messages(AGENT)) == 12, "12 lines stored")
    assert intake.messages(AGENT) == messages
    assert datadog.arrivals[1] - datadog.arrivals[0] >= 0.9  # page 2 asked only after the reset
    assert intake.sample("outpost_hub_log_poller_rate_limited_waits_total", poller="dd") >= 1


async def test_a_log_store_that_fails_keeps_the_cursor_and_the_page_is_stored_once_when_it_is_back(
    datadog: FakeDatadog, intake: Intake, tmp_path: Path
) -> None:
    messages = _events(datadog, 15)
    with intake.engine.begin() as db:  # the state database loses the table: the write fails for real
        db.exec_driver_sql("ALTER TABLE log_lines RENAME TO log_lines_away")
    metrics = PollerMetrics(intake.metrics.registry)
    async with _polling(_config(datadog.url, tmp_path), intake, metrics, tmp_path):
        failed = lambda: intake.sample("outpost_hub_log_poller_errors_total", poller="dd", kind="store")  # noqa: E731
        await _until(lambda: failed() >= 2, "two failed stores")
        with intake.engine.begin() as db:
            db.exec_driver_sql("ALTER TABLE log_lines_away RENAME TO log_lines")
        await _until(lambda: len(intake.messages(AGENT)) == 15, "15 lines stored")
    assert intake.messages(AGENT) == messages
    assert all(r.body["page"].get("cursor") in (None, datadog.cursor(10)) for r in datadog.requests())


@pytest.mark.parametrize("kind", sorted(SOURCES))
async def test_every_source_closes_safely_without_start_and_twice(kind: str, tmp_path: Path) -> None:
    keys = {"api_key": "k", "application_key": "k"} if kind == "datadog" else {"token": "t"}
    cfg = LogsConfig.model_validate(
        {"pollers": [{"kind": kind, "name": "x", "url": "http://127.0.0.1:9", **keys}]}
    )
    metrics = PollerMetrics(CollectorRegistry())
    unstarted = SOURCES[kind](cfg.pollers[0], metrics, SystemClock())
    await unstarted.aclose()
    await unstarted.aclose()
    source = SOURCES[kind](cfg.pollers[0], metrics, SystemClock())
    await source.start()
    assert source.secrets() == (["k", "k"] if kind == "datadog" else ["t"])
    await source.aclose()
    await source.aclose()


async def test_restart_resumes_at_the_cursor_and_a_page_stored_before_its_cursor_was_saved_is_kept_once(
    datadog: FakeDatadog, intake: Intake, tmp_path: Path
) -> None:
    messages = _events(datadog, 30)
    metrics = PollerMetrics(intake.metrics.registry)
    cfg = _config(datadog.url, tmp_path)
    state = tmp_path / "pollers" / "dd.json"

    async def run_until(lines: int, fail_after: int | None) -> None:
        datadog.serve_pages = fail_after
        async with _polling(cfg, intake, metrics, tmp_path):
            await _until(lambda: len(intake.messages(AGENT)) == lines, f"{lines} lines stored")
            await _until(lambda: datadog.served == fail_after or fail_after is None, "the pages served")
            await asyncio.sleep(0.1)  # the cursor of the last page saved

    await run_until(10, fail_after=1)  # the source goes down after page 1; the hub stops
    after_page_1 = tmp_path / "after-page-1.json"
    shutil.copy(state, after_page_1)
    await run_until(20, fail_after=2)  # restarted: page 2 from the saved cursor, then down again
    assert datadog.requests()[-1].body["page"]["cursor"] == datadog.cursor(
        20
    )  # asked for page 3, then stopped
    # A crash after page 2 was stored but before its cursor was saved: the cursor file says page 1.
    shutil.copy(after_page_1, state)
    more = _events(datadog, 5, first=30, ago_s=20)
    await run_until(35, fail_after=None)
    assert intake.messages(AGENT) == messages + more  # no line twice, none lost
    # Page 2 came again with the same events: the log store's batch ledger refused it.
    assert intake.sample("outpost_hub_logs_duplicate_total") == 10
    assert intake.sample("outpost_hub_log_poller_errors_total", poller="dd", kind="status") >= 2


async def test_an_expired_page_cursor_reads_the_window_again_and_skips_what_was_stored(
    datadog: FakeDatadog, intake: Intake, tmp_path: Path
) -> None:
    messages = _events(datadog, 25)
    metrics = PollerMetrics(intake.metrics.registry)
    cfg = _config(datadog.url, tmp_path)
    datadog.serve_pages = 1
    async with _polling(cfg, intake, metrics, tmp_path):
        await _until(lambda: len(intake.messages(AGENT)) == 10 and datadog.served == 1, "page 1 stored")
        await asyncio.sleep(0.1)
    datadog.serve_pages = None
    datadog.generation += 1  # the saved cursor of page 2 expired meanwhile
    async with _polling(cfg, intake, metrics, tmp_path):
        await _until(lambda: len(intake.messages(AGENT)) == 25, "25 lines stored")
    assert intake.messages(AGENT) == messages
    assert intake.sample("outpost_hub_log_poller_errors_total", poller="dd", kind="cursor") >= 1
    assert (
        intake.sample("outpost_hub_log_poller_duplicates_total", poller="dd") >= 10
    )  # page 1 again, skipped


async def test_many_pollers_store_through_one_intake_at_once_each_line_once(
    datadog: FakeDatadog, intake: Intake, tmp_path: Path
) -> None:
    messages = _events(datadog, 60)
    metrics = PollerMetrics(intake.metrics.registry)
    configs = [_config(datadog.url, tmp_path, name=f"dd{i}", page_limit=7) for i in range(6)]
    job = LogPollers(configs, intake.intake, metrics, tmp_path / "pollers", SystemClock())
    await job.start()
    try:
        await _until(
            lambda: all(len(intake.messages(f"poll:dd{i}")) >= 60 for i in range(6)),
            "every poller's lines",
            20,
        )
    finally:
        await job.aclose()
    for i in range(6):  # six tasks storing on the intake's threads at once: nothing twice, nothing lost
        assert intake.messages(f"poll:dd{i}") == messages
    assert intake.sample("outpost_hub_logs_stored_total") == 360
    assert sum(t.count for t in intake.logs.templates(100)) == 360  # template counts exact


async def test_keys_never_appear_in_logs_or_metrics_and_the_outage_is_logged_once_each_way(
    datadog: FakeDatadog, intake: Intake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _events(datadog, 3)
    datadog.status = 403  # and the body echoes the API key
    metrics = PollerMetrics(intake.metrics.registry)
    cfg = _config(datadog.url, tmp_path)
    async with _polling(cfg, intake, metrics, tmp_path):
        refused = lambda: intake.sample("outpost_hub_log_poller_errors_total", poller="dd", kind="auth")  # noqa: E731
        await _until(lambda: refused() >= 3, "three refused polls")
        datadog.status = 200
        await _until(lambda: len(intake.messages(AGENT)) == 3, "lines stored once the keys are good")
        await _until(lambda: "back after" in caplog.text, "the source logged back")
    downs = [r.getMessage() for r in caplog.records if "down:" in r.getMessage()]
    backs = [r.getMessage() for r in caplog.records if "back after" in r.getMessage()]
    assert len(downs) == 1 and len(backs) == 1
    assert "log source datadog 'dd' down: auth: POST http://127.0.0.1" in downs[0] and "403" in downs[0]
    assert "<redacted>" in downs[0]  # the key the server echoed, scrubbed
    text = caplog.text + repr(cfg) + str(cfg.model_dump())
    assert DD_API_KEY not in text and DD_APP_KEY not in text
    exposition = generate_latest(intake.metrics.registry).decode()
    assert (
        DD_API_KEY not in exposition
        and 'outpost_hub_log_poller_errors_total{kind="auth",poller="dd"}' in exposition
    )


@pytest.mark.parametrize(
    ("poller", "path"),
    [
        ({"kind": "datadog", "name": "a"}, "logs.pollers.0.datadog"),
        (
            {"kind": "datadog", "name": "a", "api_key": "k", "application_key": "k", "page_limit": 5001},
            "page_limit",
        ),
        (
            {"kind": "datadog", "name": "a", "api_key": "k", "application_key": "k", "url": "http://u:p@h"},
            "url",
        ),
        ({"kind": "splunk", "name": "a", "url": "https://s:8089"}, "token"),
        ({"kind": "splunk", "name": "a/b", "url": "https://s:8089", "token": "t"}, "name"),
        ({"kind": "graylog", "name": "a"}, "kind"),
    ],
)
def test_a_bad_poller_config_is_refused_with_its_path(poller: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as err:
        HubConfig.model_validate({"logs": {"pollers": [poller]}})
    assert path.split(".")[-1] in str(err.value)


def test_two_pollers_with_one_name_are_refused() -> None:
    p = {"kind": "splunk", "name": "s", "url": "https://s:8089", "token": "t"}
    with pytest.raises(ValidationError, match="poller names must be unique"):
        HubConfig.model_validate({"logs": {"pollers": [p, p]}})
