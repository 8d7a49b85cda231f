"""Semantic search on a real hub process: log lines pushed over gRPC make their templates findable by a
paraphrase through `/api/v1/logs/search`, incidents opened from posted alerts find their look-alike first
through `/api/v1/incidents/{id}/similar`, bad parameters are counted 400s, an unknown incident a 404, a hub
with `logs.semantic.enabled: false` a counted 503, and searches answer while templates are being indexed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.config import HubConfig
from hub.pipeline import ADMIN_TOKEN_FILE, Hub
from shared.model import Batch, BatchClass, LogRecord
from tests.enrich.llm_server import FakeLlm, llm  # noqa: F401 - the fixture
from tests.support.outpost import HubHandle, push_batches, start_hub, wait_for
from tests.support.procs import free_port

pytest.importorskip("chromadb", reason="the `semantic` extra is not installed")

pytestmark = pytest.mark.integration

AGENT = "s/edge-sem"
SHAPES = (
    lambda i: f"write of block {i} failed: No space left on device",
    lambda i: f"Failed password for invalid user admin{i} from 10.2.0.{i % 250} port {40000 + i} ssh2",
    lambda i: f"Interface GigabitEthernet0/{i % 24} changed state to down",
)
PER_SHAPE = 20


class SemHub:
    def __init__(self, hub: HubHandle) -> None:
        self.hub = hub
        self.headers = {"Authorization": f"Bearer {hub.token}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.hub.api_url + path, params=params, headers=self.headers, timeout=10)

    def search(self, q: str, **params: Any) -> list[dict[str, Any]]:
        r = self.get("/api/v1/logs/search", q=q, **params)
        assert r.status_code == 200, r.text
        hits: list[dict[str, Any]] = r.json()["hits"]
        return hits

    def metric(self, line_start: str) -> float:
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def _batch(seq: int, messages: list[str], t0: int) -> Batch:
    logs = tuple(
        LogRecord(t0 + i, t0 + i + 3, m, severity=3, app="demo", device="sw1") for i, m in enumerate(messages)
    )
    return Batch(1, seq, logs=logs, batch_class=BatchClass.LOGS)


@pytest.fixture(scope="module")
def sem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SemHub]:
    hub = start_hub(tmp_path_factory.mktemp("semantic"))
    try:
        t0 = int(time.time() * 1000) - 60_000
        lines = [SHAPES[i % 3](i) for i in range(3 * PER_SHAPE)]
        results = push_batches(hub, [_batch(1, lines, t0)], AGENT)
        assert all(not r.error_message and not r.retry_after_ms for r in results), results
        yield SemHub(hub)
    finally:
        hub.stop()


def _first(sem: SemHub, q: str, wanted: str) -> dict[str, Any] | None:
    hits = sem.search(q, limit=3)
    return hits[0] if hits and wanted in hits[0]["template"] else None


def test_a_pushed_line_makes_its_template_findable_by_a_paraphrase_with_its_store_counts(sem: SemHub) -> None:
    disk = wait_for(lambda: _first(sem, "disk full", "No space left"), timeout=20, what="disk full -> ENOSPC")
    assert disk["count"] == PER_SHAPE and disk["last_seen_ms"] > 0 and 0 < disk["score"] <= 1
    assert _first(sem, "ssh login failed for user", "Failed password") is not None
    assert _first(sem, "link went down", "changed state to down") is not None
    by_id = {t["template_id"]: t for t in sem.get("/api/v1/logs/templates").json()["templates"]}
    assert by_id[disk["template_id"]]["template"] == disk["template"]
    assert len(sem.search("disk full", limit=1)) == 1
    assert sem.metric('outpost_hub_semantic_indexed_total{kind="templates"}') >= 3


def _incident_of(sem: SemHub, device: str) -> str | None:
    incidents = sem.get("/api/v1/incidents").json()["incidents"]
    return next((i["id"] for i in incidents if i["labels"].get("device") == device), None)


def test_an_incident_finds_the_one_with_a_similar_alert_first_and_never_itself(sem: SemHub) -> None:
    alerts = [
        ("db1", "DiskFull", "filesystem /var is 97% full"),
        ("sw7", "InterfaceDown", "link on port 3 went down"),
        ("db2", "VolumeSpaceLow", "no space left on the data volume, disk almost full"),
        ("fw1", "CertificateExpiry", "TLS certificate expires in 3 days"),
    ]
    body = [
        {"labels": {"alertname": name, "site": "dc1", "device": dev}, "annotations": {"summary": summary}}
        for dev, name, summary in alerts
    ]
    r = httpx.post(sem.hub.api_url + "/api/v1/alerts", json=body, headers=sem.headers, timeout=10)
    assert r.status_code == 202, r.text
    ids = {
        dev: wait_for(lambda d=dev: _incident_of(sem, d), what=f"incident on {dev}") for dev, _, _ in alerts
    }

    def similar() -> list[dict[str, Any]] | None:
        r = sem.get(f"/api/v1/incidents/{ids['db1']}/similar", limit=3)
        assert r.status_code == 200, r.text
        hits: list[dict[str, Any]] = r.json()["hits"]
        return hits if len(hits) == 3 else None  # every other incident indexed

    hits = wait_for(similar, timeout=20, what="the other incidents indexed")
    assert hits[0]["incident_id"] == ids["db2"] and hits[0]["status"] == "open"
    assert ids["db1"] not in {h["incident_id"] for h in hits}
    assert hits[0]["score"] > hits[1]["score"]
    assert "device=db2" in hits[0]["title"]


def test_an_unknown_incident_is_404(sem: SemHub) -> None:
    r = sem.get("/api/v1/incidents/fffffffffff0/similar")
    assert r.status_code == 404 and r.json()["detail"] == "no such incident"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/logs/search", {}),
        ("/api/v1/logs/search", {"q": ""}),
        ("/api/v1/logs/search", {"q": "   "}),
        ("/api/v1/logs/search", {"q": "x" * 513}),
        ("/api/v1/logs/search", {"q": "disk\x01full"}),
        ("/api/v1/logs/search", {"q": "disk", "limit": "0"}),
        ("/api/v1/logs/search", {"q": "disk", "limit": "51"}),
        ("/api/v1/logs/search", {"q": "disk", "limit": "ten"}),
        ("/api/v1/incidents/fffffffffff0/similar", {"limit": "0"}),
        ("/api/v1/incidents/fffffffffff0/similar", {"limit": "51"}),
    ],
)
def test_bad_parameters_are_counted_400s(sem: SemHub, path: str, params: dict[str, str]) -> None:
    endpoint = "logs_search" if "logs" in path else "incidents_similar"
    counter = f'outpost_hub_api_rejected_total{{endpoint="{endpoint}",reason="bad_request"}}'
    before = sem.metric(counter)
    r = sem.get(path, **params)
    assert r.status_code == 400, r.text
    assert sem.metric(counter) == before + 1


def test_the_longest_query_is_answered(sem: SemHub) -> None:
    assert len(sem.search("disk " * 102 + "ab", limit=50)) >= 3  # 512 characters


def test_searches_at_once_while_templates_are_indexed_are_all_answered(sem: SemHub) -> None:
    t0 = int(time.time() * 1000) - 30_000
    fresh = [
        f"raid controller {w} reported battery {w} failure code {i}"
        for i, w in enumerate(
            ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
        )
    ]

    def push() -> None:  # each batch a new shape: new templates keep arriving while the searches run
        for n, line in enumerate(fresh):
            push_batches(sem.hub, [_batch(100 + n, [line], t0 + n)], AGENT)

    pusher = threading.Thread(target=push)
    pusher.start()

    async def searches() -> list[int]:
        async with httpx.AsyncClient(base_url=sem.hub.api_url, headers=sem.headers, timeout=30) as c:
            queries = ["disk full", "ssh login failed", "interface down", "battery failure", "raid"] * 8
            answers = await asyncio.gather(*(c.get("/api/v1/logs/search", params={"q": q}) for q in queries))
        return [a.status_code for a in answers]

    try:
        codes = asyncio.run(searches())
    finally:
        pusher.join(timeout=60)
    assert codes == [200] * 40
    got = wait_for(
        lambda: {h["template"] for h in sem.search("raid battery failure", limit=50)
                 if h["template"].startswith("raid controller")} or None,
        timeout=20,
        what="the new templates searchable",
    )  # fmt: skip
    assert got


@asynccontextmanager
async def _hub_here(root: Path, **extra: Any) -> AsyncIterator[tuple[Hub, httpx.AsyncClient]]:
    """A real hub on real ports in the test process (a second hub process would cost ~15 s to start here)."""
    config = HubConfig.model_validate(
        {
            "data_dir": str(root),
            "api": {"listen": f"127.0.0.1:{free_port()}"},
            "grpc": {"listen": f"127.0.0.1:{free_port()}"},
            **extra,
        }
    )
    hub = Hub(config)
    try:
        await hub.start()
        token = (root / ADMIN_TOKEN_FILE).read_text().strip()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{hub.api_port}", headers={"Authorization": f"Bearer {token}"}
        ) as c:
            yield hub, c
    finally:
        await hub.aclose()


async def _until(probe: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (got := probe()):
            await asyncio.sleep(0.05)
    return got


async def test_the_llm_prompt_of_an_incident_names_a_similar_past_incident(
    tmp_path: Path,
    llm: FakeLlm,  # noqa: F811 - the fixture imported above
) -> None:
    llm_cfg = {"enabled": True, "base_url": llm.url, "api_key": "sk-test", "classify_templates": False}
    async with _hub_here(tmp_path / "hub", enrich={"llm": llm_cfg}) as (hub, c):
        first = [
            {"labels": {"alertname": "DiskFull", "device": "db1"}, "annotations": {"summary": "disk full"}}
        ]
        assert (await c.post("/api/v1/alerts", json=first)).status_code == 202
        registry = hub.metrics.registry
        await _until(
            lambda: registry.get_sample_value("outpost_hub_semantic_indexed_total", {"kind": "incidents"}),
            "the first incident indexed",
        )
        second = [
            {
                "labels": {"alertname": "VolumeSpaceLow", "device": "db2"},
                "annotations": {"summary": "no space"},
            }
        ]
        assert (await c.post("/api/v1/alerts", json=second)).status_code == 202
        prompt = await _until(
            lambda: next((r.prompt for r in list(llm.received) if "VolumeSpaceLow" in r.prompt), None),
            "the second incident's prompt",
        )
    assert "similar past incident (open, similarity" in prompt


async def test_a_hub_with_semantic_search_disabled_answers_503_counted(tmp_path: Path) -> None:
    async with _hub_here(tmp_path / "hub", logs={"semantic": {"enabled": False}}) as (_, c):
        r = await c.get("/api/v1/logs/search", params={"q": "disk full"})
        assert r.status_code == 503 and "logs.semantic.enabled: false" in r.json()["detail"]
        assert (await c.get("/api/v1/incidents/fffffffffff0/similar")).status_code == 503
        assert (await c.get("/api/v1/logs/search")).status_code == 400  # a bad request is still told so
        metrics = (await c.get("/metrics")).text
    assert 'outpost_hub_api_rejected_total{endpoint="logs_search",reason="unavailable"} 1.0' in metrics
    assert 'outpost_hub_api_rejected_total{endpoint="incidents_similar",reason="unavailable"} 1.0' in metrics
