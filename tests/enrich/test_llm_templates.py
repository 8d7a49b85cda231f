"""Log template classification against a real log store (migrated SQLite) and a real local chat server:
each template is asked about once, a class is stored per template, the keyword class stands in while the
model is down and is replaced once it answers, and the classes reach the incident prompt's log lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.alerts.incidents import Incident, IncidentStatus
from hub.alerts.model import Alert, AlertStatus
from hub.alerts.repository import AlertRepository
from hub.enrich.llm import repository
from hub.enrich.llm.classify import TemplateClass
from hub.enrich.llm.client import ChatClient
from hub.enrich.llm.config import LlmConfig
from hub.enrich.llm.context import ContextReader
from hub.enrich.llm.templates import TemplateClassJob
from hub.enrich.logs.store import LogStore, MinedRecord
from shared.clock import SystemClock
from shared.model import LogRecord
from tests.enrich.llm_server import FakeLlm, llm
from tests.support.hubdb import migrated_engine

__all__ = ["llm"]

pytestmark = pytest.mark.integration

T0 = 1_800_000_000_000
TEMPLATES = {
    "t-disk": "Disk <*> write failed on 10.0.0.7",
    "t-login": "Accepted password for <*> from <*>",
    "t-fan": "Fan <*> speed low",
}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = migrated_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    try:
        yield eng
    finally:
        eng.dispose()


def _store_lines(engine: sa.Engine) -> LogStore:
    logs = LogStore(engine)
    lines = [
        MinedRecord(LogRecord(T0 + i, T0 + i, text.replace("<*>", str(i)), device="srv1"), tid, text)
        for i, (tid, text) in enumerate(TEMPLATES.items())
    ]
    assert logs.write("dc1/edge1", 1, 1, lines, T0)
    return logs


async def test_each_template_is_classified_once_and_stored(engine: sa.Engine, llm: FakeLlm) -> None:
    llm.mode = "class"
    logs = _store_lines(engine)
    client = ChatClient(LlmConfig(base_url=llm.url))
    job = TemplateClassJob(
        LlmConfig(base_url=llm.url, classify_per_tick=2), engine, logs, client, SystemClock()
    )
    try:
        assert await job.tick() == 2  # the per-tick bound
        assert await job.tick() == 1
        assert await job.tick() == 0  # all classified by the model: nothing asked again
    finally:
        await client.aclose()
    assert len(llm.received) == 3 and "10.0.0.7" not in json.dumps(llm.requests)
    stored = repository.classes(engine, list(TEMPLATES))
    assert stored == {tid: TemplateClass("error", "storage", "llm") for tid in TEMPLATES}
    assert (job.stats.by_llm, job.stats.by_keywords) == (3, 0)


async def test_keyword_classes_stand_in_while_the_model_is_down_and_are_replaced_later(
    engine: sa.Engine, llm: FakeLlm
) -> None:
    logs = _store_lines(engine)
    down = LlmConfig(base_url="http://127.0.0.1:9", timeout_s=1, failures_to_open=1)
    client = ChatClient(down)
    job = TemplateClassJob(down, engine, logs, client, SystemClock())
    try:
        assert await job.tick() == 3
    finally:
        await client.aclose()
    stored = repository.classes(engine, list(TEMPLATES))
    assert stored["t-disk"] == TemplateClass("error", "application", "keywords")
    assert stored["t-fan"] == TemplateClass("info", "application", "keywords")

    llm.mode = "class"
    up = LlmConfig(base_url=llm.url)
    client = ChatClient(up)
    job = TemplateClassJob(up, engine, logs, client, SystemClock())
    try:
        assert await job.tick() == 3
    finally:
        await client.aclose()
    assert {c.source for c in repository.classes(engine, list(TEMPLATES)).values()} == {"llm"}


async def test_the_incident_prompt_shows_its_devices_log_lines_with_their_classes(
    engine: sa.Engine, llm: FakeLlm
) -> None:
    llm.mode = "class"
    logs = _store_lines(engine)
    client = ChatClient(LlmConfig(base_url=llm.url))
    try:
        await TemplateClassJob(LlmConfig(base_url=llm.url), engine, logs, client, SystemClock()).tick()
    finally:
        await client.aclose()
    no_series: Any = object()  # the log lines part reads no series
    reader = ContextReader(AlertRepository(engine), no_series, logs, 60_000)
    on_srv1 = Alert("a1", "f1", (("alertname", "FanSlow"), ("device", "srv1")), (), "warning", "api",
                    AlertStatus.FIRING, T0, T0, T0)  # fmt: skip
    lines = reader._templates([on_srv1], T0 - 60_000, T0 + 60_000)
    assert sorted(lines) == [
        "log line seen 1x (error, storage): Accepted password for 1 from 1",
        "log line seen 1x (error, storage): Disk 0 write failed on 10.0.0.7",
        "log line seen 1x (error, storage): Fan 2 speed low",
    ]


class _OneIncident:
    """The incident reads `ContextReader.read` makes, for one open incident without alerts."""

    engine: Any = None

    def incident(self, incident_id: str) -> tuple[Incident, list[Any]] | None:
        labels = (("device", "srv1"), ("site", "dc1"))
        return (Incident(incident_id, "g", labels, IncidentStatus.OPEN, T0, T0), [])

    def alerts_by_ids(self, ids: list[str]) -> list[Alert]:
        return []


def test_similar_past_incidents_join_the_prompt_context_bounded() -> None:
    asked: list[str] = []

    def similar(incident_id: str) -> list[str]:
        asked.append(incident_id)
        return [
            f"similar past incident (resolved, similarity 0.9): {n} alerts on device=srv1" for n in range(9)
        ]

    no_series: Any = object()
    facts = ContextReader(_OneIncident(), no_series, None, 60_000, similar).read("i1", T0)
    assert facts is not None and asked == ["i1"]
    assert facts.context == tuple(similar("i1")[:5])
