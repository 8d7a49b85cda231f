"""Log lines through the real ingest service (encoded envelopes, the embedded series store, the hub state
on SQLite and PostgreSQL): acknowledged only once durable, stored once per batch id, counted exactly
under many concurrent batches, template counts written as series, the miner's ids kept across restarts."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import stat
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.enrich.logs import counts as counts_module
from hub.enrich.logs.config import LogsConfig
from hub.enrich.logs.counts import METRIC, TemplateCounts
from hub.enrich.logs.intake import SNAPSHOT_FILE, LogIntake
from hub.enrich.logs.metrics import LogMetrics
from hub.enrich.logs.models import log_lines
from hub.enrich.logs.retention import LogRetention
from hub.enrich.logs.store import LogQuery, LogStore
from hub.fleet.agents import Fleet
from hub.ingest.service import Ingestor
from hub.store.base import RangeQuery
from hub.store.config import EmbeddedStoreConfig
from hub.store.embedded.store import EmbeddedStore
from hub.telemetry import HubMetrics
from shared import codec
from shared.clock import FakeClock
from shared.model import Batch, BatchClass, LogRecord
from tests.support.hubdb import migrated_engine

pytestmark = pytest.mark.integration

T0 = 1_789_999_200_000  # a minute boundary
SHAPES = (
    lambda i: f"user u{i} logged in from 10.0.{i % 7}.{i % 250}",
    lambda i: f"disk /dev/sd{'abc'[i % 3]} is {50 + i % 40}% full",
    lambda i: f"link eth{i % 8} changed state to down after {i} ms",
)


@dataclass
class Intake:
    engine: sa.Engine
    store: EmbeddedStore
    logs: LogStore
    metrics: HubMetrics
    log_metrics: LogMetrics
    counts: TemplateCounts
    intake: LogIntake
    ingestor: Ingestor

    def stored_lines(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(log_lines)).scalar_one())

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def _intake(url: str, tmp_path: Path, cfg: LogsConfig) -> AsyncIterator[Intake]:
    engine = migrated_engine(url)
    store = EmbeddedStore(tmp_path / "store", EmbeddedStoreConfig())
    store.open()
    metrics = HubMetrics()
    logs, lm = LogStore(engine), LogMetrics(metrics.registry)
    counts = TemplateCounts(logs, store, cfg, lm)
    intake = LogIntake(logs, counts, cfg, lm, tmp_path / "logs")
    ingestor = Ingestor(store, Fleet(engine), metrics, max_inflight=256, retry_after_ms=50, logs=intake)
    await counts.start()
    await intake.start()
    try:
        yield Intake(engine, store, logs, metrics, lm, counts, intake, ingestor)
    finally:
        await intake.aclose()
        await counts.aclose()
        ingestor.close()
        store.close()
        engine.dispose()


@pytest.fixture
async def hub(state_url: str, tmp_path: Path) -> AsyncIterator[Intake]:
    """On SQLite and PostgreSQL: for what the database's own behaviour decides."""
    async with _intake(state_url, tmp_path, LogsConfig(counts_interval_s=3600)) as intake:
        yield intake


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Intake]:
    """On SQLite only: for what does not depend on the database."""
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    async with _intake(url, tmp_path, LogsConfig(counts_interval_s=3600, max_template_series=2)) as intake:
        yield intake


def _envelope(seq: int, lines: int, first: int = 0, epoch: int = 1) -> bytes:
    logs = tuple(
        LogRecord(T0 + (first + i) * 1500, T0 + (first + i) * 1500 + 3, SHAPES[(first + i) % 3](first + i),
                  device=f"sw{(first + i) % 2}", app="demo", severity=(first + i) % 8)
        for i in range(lines)
    )  # fmt: skip
    return codec.encode(Batch(epoch, seq, logs=logs, batch_class=BatchClass.LOGS))


async def test_a_batch_whose_lines_cannot_be_stored_is_not_acknowledged_and_its_resend_stores_them_once(
    hub: Intake,
) -> None:
    data = _envelope(1, 30)
    with hub.engine.begin() as db:  # the state database loses the table: the write fails for real
        db.exec_driver_sql("ALTER TABLE log_lines RENAME TO log_lines_away")
    failed = await hub.ingestor.ingest("s/edge-1", data, "grpc")
    assert (failed.accepted_points, failed.duplicate, failed.error) == (0, False, "")
    assert failed.retry_after_ms == 50
    assert Fleet(hub.engine).agents() == []  # not counted as received either
    assert hub.sample("outpost_hub_store_errors_total", kind="logs") == 1
    with hub.engine.begin() as db:
        db.exec_driver_sql("ALTER TABLE log_lines_away RENAME TO log_lines")
    again = await hub.ingestor.ingest("s/edge-1", data, "grpc")
    assert (again.retry_after_ms, again.duplicate, again.error) == (0, False, "")
    assert hub.stored_lines() == 30
    third = await hub.ingestor.ingest("s/edge-1", data, "grpc")
    assert third.duplicate and hub.stored_lines() == 30
    assert hub.sample("outpost_hub_logs_stored_total") == 30
    assert hub.sample("outpost_hub_logs_duplicate_total") == 30
    (agent,) = Fleet(hub.engine).agents()
    assert (agent.id, agent.batches_received, agent.duplicates) == ("s/edge-1", 1, 1)


async def test_many_batches_at_once_store_every_line_once_and_count_templates_and_minutes_exactly(
    hub: Intake,
) -> None:
    agents, batches, per_batch = 4, 12, 40
    sends = []
    for a, b in itertools.product(range(agents), range(batches)):
        data = _envelope(b + 1, per_batch, first=b * per_batch)
        sends.append(hub.ingestor.ingest(f"s/edge-{a}", data, "grpc"))
        if b % 4 == 0:  # a re-send racing its first copy
            sends.append(hub.ingestor.ingest(f"s/edge-{a}", data, "grpc"))
    outcomes = await asyncio.gather(*sends)
    assert all(o.retry_after_ms == 0 and not o.error for o in outcomes)
    total = agents * batches * per_batch
    assert hub.stored_lines() == total
    assert sum(o.duplicate for o in outcomes) == agents * 3
    templates = hub.logs.templates(10)
    assert len(templates) == 3
    assert sorted(t.count for t in templates) == [total // 3] * 3
    assert hub.sample("outpost_hub_logs_stored_total") == total

    written = await hub.counts.flush()
    minutes = Counter(
        (f"s/edge-{a}", f"sw{i % 2}", (T0 + i * 1500) // 60_000 * 60_000)
        for a in range(agents)
        for i in range(batches * per_batch)
    )
    assert written == hub.sample("outpost_hub_logs_template_points_total") > 0
    got: Counter[tuple[str, str, int]] = Counter()
    ids: Counter[str] = Counter()
    for r in hub.store.query(RangeQuery(METRIC, T0, T0 + 86_400_000)):
        for ts, value in zip(r.timestamps_ms.tolist(), r.values.tolist(), strict=True):
            got[(r.key.label("agent"), r.key.label("device"), ts)] += int(value)
            ids[r.key.label("template_id")] += int(value)
    assert got == minutes
    assert ids == {t.template_id: t.count for t in templates}


async def test_a_minute_written_again_carries_its_whole_count(hub: Intake) -> None:
    await hub.ingestor.ingest("s/a", _envelope(1, 6), "grpc")  # 9 s of lines, one minute
    await hub.counts.flush()
    await hub.ingestor.ingest("s/a", _envelope(2, 6, first=6), "grpc")  # the same minute, later lines
    await hub.counts.flush()
    per_minute = Counter[int]()
    for r in hub.store.query(RangeQuery(METRIC, T0, T0 + 60_000)):
        for ts, value in zip(r.timestamps_ms.tolist(), r.values.tolist(), strict=True):
            per_minute[ts] += int(value)
    assert per_minute == {T0: 12}


async def test_template_series_past_the_cap_are_counted_not_written(local: Intake) -> None:
    batch = Batch(1, 1, logs=tuple(LogRecord(T0 + i, T0, SHAPES[i % 3](i)) for i in range(9)))
    local.intake.store_batch("s/a", batch)
    await local.counts.flush()
    assert len(local.store.series(METRIC)) == 2
    assert local.sample("outpost_hub_logs_template_series_capped_total") == 1
    # A restarted process learns the series already written: the cap still holds.
    capped = LogsConfig(max_template_series=2)
    again = TemplateCounts(local.logs, local.store, capped, LogMetrics(HubMetrics().registry))
    await again.start()
    again.mark("s/a", [T0])
    assert await again.flush() == 2  # one point (minute) for each of the two series kept
    await again.aclose()


async def test_the_miner_is_saved_private_and_restored_so_a_restart_keeps_template_ids(local: Intake) -> None:
    await local.ingestor.ingest("s/a", _envelope(1, 9), "grpc")
    before = {t.template_id for t in local.logs.templates(10)}
    await local.intake.aclose()
    path = local.intake._dir / SNAPSHOT_FILE  # noqa: SLF001 (where the fixture's intake keeps it)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    restarted = LogIntake(
        local.logs, local.counts, LogsConfig(), LogMetrics(HubMetrics().registry), path.parent
    )
    await restarted.start()
    try:
        batch = Batch(1, 2, logs=tuple(LogRecord(T0 + 1, T0, SHAPES[i](500 + i)) for i in range(3)))
        restarted.store_batch("s/a", batch)
        page = local.logs.search(LogQuery(T0, T0 + 10, 10))
        assert {line.template_id for line in page.lines} == before
    finally:
        await restarted.aclose()


async def test_lines_with_fields_out_of_range_are_counted_and_the_rest_stored(local: Intake) -> None:
    bad = (LogRecord(T0, T0, "x", severity=9), LogRecord(T0, T0, "y", facility=40), LogRecord(-5, T0, "z"))
    good = LogRecord(T0, T0, "a\x00b " + "w" * 9000, host="h\x00")
    local.intake.store_batch("s/a", Batch(1, 1, logs=(*bad, good)))
    (line,) = local.logs.search(LogQuery(0, T0 + 1, 10)).lines
    assert line.message.startswith("a\ufffdb w") and len(line.message) == 8192 and line.host == "h\ufffd"
    assert local.sample("outpost_hub_logs_rejected_total", reason="field") == 3
    assert local.sample("outpost_hub_logs_truncated_total") == 1


async def test_a_retention_pass_counts_what_it_pruned_and_says_so_in_one_line(
    local: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    old = tuple(LogRecord(T0 - 2 * 86_400_000 + i, T0, SHAPES[0](i)) for i in range(12))
    new = tuple(LogRecord(T0 + i, T0, SHAPES[1](i)) for i in range(15))
    local.intake.store_batch("s/a", Batch(1, 1, logs=old + new))
    cfg = LogsConfig(retention_days=1, max_rows=10, prune_chunk=4)
    retention = LogRetention(local.logs, cfg, local.log_metrics, FakeClock(T0 + 60_000))
    with caplog.at_level(logging.INFO, logger="hub.enrich.logs.retention"):
        done = await retention.prune()
        await retention.prune()  # nothing left to remove: counted as nothing, not logged
    assert (done.by_age, done.by_rows) == (12, 5) and local.stored_lines() == 10
    assert local.sample("outpost_hub_logs_pruned_total", reason="age") == 12
    assert local.sample("outpost_hub_logs_pruned_total", reason="rows") == 5
    (record,) = caplog.records
    assert "removed 17 lines (12 older than 1 days, 5 beyond 10 rows)" in record.getMessage()


async def test_minutes_waiting_to_be_counted_are_bounded_and_the_excess_counted(
    local: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(counts_module, "MAX_MARKED", 3)
    lines = tuple(LogRecord(T0 + m * 60_000, T0, SHAPES[0](m)) for m in range(5))  # five minutes
    local.intake.store_batch("s/a", Batch(1, 1, logs=lines))
    assert local.sample("outpost_hub_logs_template_minutes_dropped_total") == 2
    assert await local.counts.flush() == 3
    local.counts.mark("s/a", [T0 + 3 * 60_000])  # room again once the marked ones were counted
    assert await local.counts.flush() == 1
