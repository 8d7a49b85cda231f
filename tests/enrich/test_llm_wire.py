"""LLM enrichment wired into a running hub (real uvicorn, memory bus, SQLite state, the notify dispatcher
posting to a real local receiver) against a real local OpenAI-compatible server that records requests:
incidents are notified first and explained when the answer arrives (REST and the /ws incidents topic)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.bus.messages import IncidentChanged
from hub.config import HubConfig
from hub.pipeline import ADMIN_TOKEN_FILE, Hub
from tests.enrich.llm_server import FakeLlm, llm
from tests.notify.recorder import Recorder
from tests.support.procs import free_port
from tests.ws.conftest import FAST_WS, LiveHub, events_of, frames, open_stream, scrape

__all__ = ["llm"]

pytestmark = pytest.mark.integration

API_KEY = "sk-live-0123456789abcdefXYZ"
ANSWER = json.dumps(
    {
        "summary": "Uplink <b>down</b> <script>alert(1)</script>",
        "probable_cause": "optic failed",
        "suggested_actions": ["reseat the optic", "check the far end"],
        "confidence": 0.7,
    }
)
# What the incident carries that must never reach the model.
SECRETS = ("10.20.30.40", "core1.dc2.example.com", "noc@example.org", "hunter2secret")


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    rec = Recorder().start()
    try:
        yield rec
    finally:
        rec.stop()


@pytest.fixture
async def hub_factory(tmp_path: Path, receiver: Recorder) -> AsyncIterator[Callable[..., Any]]:
    """Starts a hub with enrichment pointing at `base_url`; every hub started is stopped at the end."""
    started: list[Hub] = []

    async def start(base_url: str, **llm_cfg: Any) -> LiveHub:
        root = tmp_path / f"hub{len(started)}"
        config = HubConfig.model_validate(
            {
                "data_dir": str(root),
                "api": {"listen": f"127.0.0.1:{free_port()}"},
                "grpc": {"listen": f"127.0.0.1:{free_port()}"},
                "alerts": {
                    "routes": [{"receiver": "noc"}],
                    "timers": {"group_wait_s": 0, "group_interval_s": 0.5, "repeat_interval_s": 3600},
                },
                "notify": {
                    "receivers": [
                        {
                            "kind": "webhook",
                            "name": "noc",
                            "url": receiver.url("/hook"),
                            "backoff_base_s": 0.05,
                        }
                    ],
                    "poll_interval_s": 0.1,
                },
                "ws": FAST_WS,
                "enrich": {"llm": {"enabled": True, "base_url": base_url, "api_key": API_KEY, **llm_cfg}},
            }
        )
        hub = Hub(config)
        started.append(hub)
        await hub.start()
        return LiveHub(hub, (root / ADMIN_TOKEN_FILE).read_text().strip())

    try:
        yield start
    finally:
        for hub in started:
            await hub.aclose()


def alert(device: str, summary: str = "", **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": "LinkDown", "site": "dc1", "device": device, **labels},
        "annotations": {"summary": summary} if summary else {},
    }


async def post_alerts(live: LiveHub, body: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(base_url=live.http) as c:
        r = await c.post("/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {live.token}"})
    assert r.status_code == 202, r.text


async def incidents(live: LiveHub) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=live.http) as c:
        r = await c.get("/api/v1/incidents", headers={"Authorization": f"Bearer {live.token}"})
    assert r.status_code == 200, r.text
    return list(r.json()["incidents"])


async def incident(live: LiveHub, incident_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=live.http) as c:
        r = await c.get(f"/api/v1/incidents/{incident_id}", headers={"Authorization": f"Bearer {live.token}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def eventually(probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """`probe()`'s first truthy result (awaited when it is a coroutine); fails after `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            got = probe()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return got
            await asyncio.sleep(0.05)


async def test_a_slow_model_explains_an_incident_after_its_notification_redacted_and_streamed(
    llm: FakeLlm, receiver: Recorder, hub_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    llm.answer = ANSWER
    llm.release.clear()  # the model thinks until the test says otherwise
    caplog.set_level(logging.DEBUG)
    live = await hub_factory(llm.url)
    ws, _ = await open_stream(live.url, live.token, topics=["incidents"])
    async with ws:
        summary = f"uplink to {SECRETS[1]} ({SECRETS[0]}) down, owner {SECRETS[2]}, password={SECRETS[3]}"
        await post_alerts(live, [alert("sw1", summary)])
        (notified,) = await receiver.until(1, "/hook")
        (inc,) = await incidents(live)
        await eventually(lambda: llm.arrived == 1)  # asked, not answered, and the page is out already
        assert (await incident(live, inc["id"]))["enrichment"] is None
        await asyncio.sleep(0.3)
        llm.release.set()
        received: list[dict[str, Any]] = []
        while not [e for e in received if e["kind"] == "incident.enriched"]:
            received += events_of(await frames(ws, 1))
        (enriched,) = [e for e in received if e["kind"] == "incident.enriched"]
        assert enriched["topic"] == "incidents" and enriched["data"]["incident_id"] == inc["id"]
        assert enriched["data"]["source"] == "llm"
    (request,) = llm.received
    assert notified.at < request.answered_at  # notified while the model was still answering
    got = (await incident(live, inc["id"]))["enrichment"]
    assert got["summary"] == "Uplink <b>down</b> <script>alert(1)</script>"  # stored as text, as given
    assert got["suggested_actions"] == ["reseat the optic", "check the far end"]
    assert (got["fallback"], got["confidence"], got["provenance"]["tokens"]) == (False, 0.7, 100)
    assert got["provenance"]["model"] == "smollm2-135m" and got["provenance"]["latency_ms"] >= 300
    assert "LinkDown on sw1" in request.prompt and "uplink to <host>" in request.prompt
    sent = json.dumps(request.body)
    assert not [s for s in SECRETS if s in sent]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    metrics = await scrape(live, "outpost_hub_llm_enriched_total 1.0")
    assert "outpost_hub_llm_requests_total 1.0" in metrics and "outpost_hub_llm_tokens_total 100.0" in metrics
    assert API_KEY not in metrics and API_KEY not in caplog.text
    # The same facts again (a redelivered or repeated change): nothing is asked twice.
    await live.hub.bus.publish(
        IncidentChanged.create(incident_id=inc["id"], status="open", change="updated", ts_ms=1)
    )
    await scrape(live, "outpost_hub_llm_unchanged_total 1.0")
    assert len(llm.received) == 1


async def test_with_the_model_down_incidents_are_notified_without_an_explanation(
    receiver: Recorder, hub_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    live = await hub_factory(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    await post_alerts(live, [alert("sw1"), alert("sw2")])
    await receiver.until(1, "/hook")
    found = await eventually(lambda: incidents(live))
    metrics = await scrape(live, "outpost_hub_llm_unanswered_total 2.0")
    assert "outpost_hub_llm_request_failures_total 2.0" in metrics
    assert [(await incident(live, i["id"]))["enrichment"] for i in found] == [None, None]
    downs = [r for r in caplog.records if "LLM server" in r.getMessage() and "down" in r.getMessage()]
    assert len(downs) == 1  # logged once, however many incidents went unexplained


async def test_garbage_answers_store_the_marked_fallback_after_one_retry(
    llm: FakeLlm, receiver: Recorder, hub_factory: Callable[..., Any]
) -> None:
    llm.mode = "badjson"
    live = await hub_factory(llm.url)
    await post_alerts(live, [alert("sw1", "port flapping")])
    (inc,) = await eventually(lambda: incidents(live))
    got = await eventually(lambda: _enrichment(live, inc["id"]))
    assert got["fallback"] is True and got["confidence"] == 0.0
    assert (
        got["summary"]
        == "1 alert on device=sw1, site=dc1: 1 alert(s): [warning, firing] LinkDown on sw1; port flapping"
    )
    assert len(llm.received) == 2  # one retry, then the fallback
    await scrape(live, "outpost_hub_llm_fallbacks_total 1.0")


async def _enrichment(live: LiveHub, incident_id: str) -> dict[str, Any] | None:
    enrichment: dict[str, Any] | None = (await incident(live, incident_id))["enrichment"]
    return enrichment


async def test_many_incidents_at_once_are_each_explained_exactly_once(
    llm: FakeLlm, receiver: Recorder, hub_factory: Callable[..., Any]
) -> None:
    llm.delay_s = 0.1
    live = await hub_factory(llm.url, concurrency=4)
    devices = [f"sw{n}" for n in range(16)]
    # Two posts of the same alerts and repeated changes: the job must not ask twice about one incident.
    await asyncio.gather(
        post_alerts(live, [alert(d) for d in devices]), post_alerts(live, [alert(d) for d in devices])
    )
    found = await eventually(lambda: _all(live, len(devices)))
    for inc in found:
        for ts in range(3):
            await live.hub.bus.publish(
                IncidentChanged.create(incident_id=inc["id"], status="open", change="updated", ts_ms=ts)
            )
    await eventually(lambda: _explained(live, [i["id"] for i in found]), timeout=20)
    await asyncio.sleep(0.5)  # anything still queued would ask now
    asked = sorted(
        r.prompt.split("LinkDown on ", 1)[1].split(";", 1)[0].split("\n", 1)[0] for r in llm.received
    )
    import sys

    for r in llm.received:
        print("PROMPT", repr(r.prompt), r.body["messages"][0]["content"][:30], file=sys.stderr)
    assert asked == sorted(devices)


async def _all(live: LiveHub, n: int) -> list[dict[str, Any]] | None:
    found = await incidents(live)
    return found if len(found) == n else None


async def _explained(live: LiveHub, ids: list[str]) -> bool:
    return all([await _enrichment(live, i) for i in ids])
