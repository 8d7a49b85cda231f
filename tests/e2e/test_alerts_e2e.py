"""Alerts through a real hub process: the REST API, an agent that goes offline and comes back, and a real
Prometheus Alertmanager that receives firing and resolved alerts from the hub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.notify.alertmanager import start_alertmanager
from tests.notify.recorder import Recorder
from tests.support.outpost import HubHandle, start_agent, start_hub, wait_for, write_agent_config

pytestmark = pytest.mark.e2e

FAST = {"group_wait_s": 0, "group_interval_s": 0.5, "repeat_interval_s": 3600}


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder().start()
    try:
        yield rec
    finally:
        rec.stop()


def _hub(tmp: Path, recorder: Recorder, receivers: list[dict[str, Any]] | None = None) -> HubHandle:
    receivers = receivers or [
        {"name": "noc", "kind": "webhook", "url": recorder.url("/hook"), "backoff_base_s": 0.1}
    ]
    extra = {
        "alerts": {
            "timers": FAST,
            "routes": [{"receiver": r["name"], "continue": True} for r in receivers],
            "offline": {"max_after_s": 45},
        },
        "notify": {"receivers": receivers, "poll_interval_s": 0.2},
    }
    return start_hub(tmp, extra=extra)


class Api:
    def __init__(self, hub: HubHandle) -> None:
        self.c = httpx.Client(
            base_url=hub.api_url, headers={"Authorization": f"Bearer {hub.token}"}, timeout=10
        )

    def get(self, path: str, **params: Any) -> Any:
        r = self.c.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, body: Any = None, expect: int = 200) -> Any:
        r = self.c.post(path, json=body)
        assert r.status_code == expect, r.text
        return r.json()


def test_external_alerts_ack_resolve_silence_maintenance_and_incidents_over_the_api(
    tmp_path: Path, recorder: Recorder
) -> None:
    hub = _hub(tmp_path, recorder)
    api = Api(hub)
    try:
        alert = {
            "labels": {"alertname": "DiskFull", "site": "dc1", "device": "nas1", "severity": "critical"},
            "annotations": {"summary": "/data 98 % full"},
        }
        for _ in range(3):
            api.post("/api/v1/alerts", [alert], expect=202)
        (a,) = wait_for(lambda: api.get("/api/v1/alerts")["alerts"], what="the alert")
        assert (a["status"], a["count"], a["severity"], a["labels"]["device"]) == (
            "firing",
            3,
            "critical",
            "nas1",
        )
        assert a["source"] == "api:admin"
        assert api.post(f"/api/v1/alerts/{a['id']}/ack")["acknowledged_by"] == "admin"
        assert api.get("/api/v1/alerts", status="acknowledged")["alerts"][0]["id"] == a["id"]
        assert api.get("/api/v1/alerts", status="firing")["alerts"] == []
        api.post(f"/api/v1/alerts/{a['id']}/unack")
        assert api.get("/api/v1/alerts", match='device="nas1"')["alerts"][0]["status"] == "firing"
        assert api.get("/api/v1/alerts", match='device="other"')["alerts"] == []

        # Silence: a new alert matching it is recorded as suppressed and not notified.
        silence = api.post(
            "/api/v1/silences",
            {"matchers": ['device="sw9"'], "endsAt": "2199-01-01T00:00:00Z", "comment": "swap"},
            expect=201,
        )
        assert silence["active"] is True and silence["created_by"] == "admin"
        api.post(
            "/api/v1/alerts", [{"labels": {"alertname": "LinkDown", "site": "dc1", "device": "sw9"}}], 202
        )
        sw9 = wait_for(lambda: api.get("/api/v1/alerts", match='device="sw9"')["alerts"], what="sw9 alert")
        assert sw9[0]["status"] == "suppressed" and sw9[0]["silenced_by"] == silence["id"]
        assert [s["id"] for s in api.get("/api/v1/silences")["silences"]] == [silence["id"]]
        r = api.c.delete(f"/api/v1/silences/{silence['id']}")
        assert r.status_code == 200
        wait_for(
            lambda: api.get("/api/v1/alerts", match='device="sw9"')["alerts"][0]["status"] == "firing",
            what="sw9 unsuppressed when its silence was deleted",
        )

        # A recurring maintenance window, daily for 2 h.
        mw = api.post(
            "/api/v1/maintenance",
            {
                "matchers": ['site="dc2"'],
                "rrule": "FREQ=DAILY",
                "duration": "2h",
                "timezone": "Europe/Berlin",
            },
            expect=201,
        )
        assert mw["active"] is True and mw["next_change_ms"] is not None
        bad = api.c.post(
            "/api/v1/maintenance",
            json={"matchers": ['site="dc2"'], "rrule": "FREQ=SECONDLY", "duration": "1m"},
        )
        assert bad.status_code == 400 and "FREQ" in bad.text

        # Incidents gather per site + device, with a timeline and notes.
        incidents = api.get("/api/v1/incidents")["incidents"]
        (nas,) = [i for i in incidents if i["labels"].get("device") == "nas1"]
        api.post(f"/api/v1/incidents/{nas['id']}/notes", {"text": "replacing the disk"})
        api.post(f"/api/v1/incidents/{nas['id']}/assign", {"assignee": "ana"})
        full = api.get(f"/api/v1/incidents/{nas['id']}")
        assert full["assignee"] == "ana" and [x["id"] for x in full["alerts"]] == [a["id"]]
        assert [e["kind"] for e in full["timeline"]][-2:] == ["note", "assigned"]

        done = api.post(f"/api/v1/alerts/{a['id']}/resolve")
        assert done["status"] == "resolved" and done["resolved_by"] == "admin"
        assert api.c.post(f"/api/v1/alerts/{a['id']}/resolve").status_code == 404
        wait_for(
            lambda: api.get(f"/api/v1/incidents/{nas['id']}")["status"] == "resolved", what="incident done"
        )

        def nas_hooks() -> list[str]:
            hooks = [json.loads(r.body) for r in recorder.requests("/hook")]
            return [h["status"] for h in hooks if h["groupLabels"].get("device") == "nas1"]

        wait_for(lambda: nas_hooks() == ["firing", "resolved"], what="firing then resolved, once each")
        metrics = api.c.get("/metrics").text
        assert 'outpost_hub_alert_signals_total{outcome="deduplicated"} 2.0' in metrics
        assert 'outpost_hub_alerts_open{severity="warning",status="firing"} 1.0' in metrics  # sw9
        assert 'outpost_hub_notify_sent_total{receiver="noc"}' in metrics
        hooks = [json.loads(r.body) for r in recorder.requests("/hook")]
        assert not [h for h in hooks if h["groupLabels"].get("device") == "sw9" and h["status"] == "resolved"]
    finally:
        hub.stop()


@pytest.mark.parametrize(
    ("param", "value"),
    [("status", "bogus"), ("severity", "loud"), ("match", 'device=~"(a'), ("limit", "0"), ("before", "zz")],
)
def test_bad_alert_queries_are_refused_with_400s(
    tmp_path: Path, recorder: Recorder, param: str, value: str
) -> None:
    hub = _hub(tmp_path, recorder)
    try:
        r = Api(hub).c.get("/api/v1/alerts", params={param: value})
        assert r.status_code in (400, 422), r.text
        assert Api(hub).c.post("/api/v1/alerts", json=[{"labels": {}}]).status_code == 400
        assert (
            Api(hub).c.post("/api/v1/alerts", json=[{"labels": {"alertname": "x"}}] * 1001).status_code == 422
        )
    finally:
        hub.stop()


def test_an_agent_that_stops_is_one_offline_alert_with_no_device_alerts_and_resolves_when_it_returns(
    tmp_path: Path, recorder: Recorder
) -> None:
    hub = _hub(tmp_path, recorder)
    api = Api(hub)
    tls = hub.issue_agent("rack12", tmp_path / "pki", site="dc1")
    cfg = write_agent_config(
        tmp_path / "agent.yaml",
        hub,
        tls,
        heartbeat_s=1,
        devices=[{"kind": "host", "name": "jump1", "interval_s": 1}],
    )
    agent = start_agent(cfg, tmp_path / "logs")
    try:
        wait_for(lambda: hub.get("/api/v1/agents")["agents"], what="the agent delivering")
        agent.kill()  # SIGKILL: no goodbye
        (off,) = wait_for(
            lambda: api.get("/api/v1/alerts", status="firing")["alerts"], timeout=45, what="the offline alert"
        )
        assert off["labels"]["alertname"] == "AgentOffline" and off["labels"]["agent"] == "dc1/rack12"
        assert off["annotations"]["summary"] == "agent dc1/rack12 offline, 1 device unobserved"
        assert off["annotations"]["devices"] == "jump1"
        api.post(
            "/api/v1/alerts",
            [{"labels": {"alertname": "Hot", "agent": "dc1/rack12", "device": "jump1"}}],
            202,
        )
        agent = start_agent(cfg, tmp_path / "logs", name="agent-again")
        wait_for(
            lambda: api.get(f"/api/v1/alerts/{off['id']}")["status"] == "resolved",
            timeout=30,
            what="the offline alert resolved by the next heartbeat",
        )
        names = [x["labels"]["alertname"] for x in api.get("/api/v1/alerts")["alerts"]]
        assert "Hot" not in names and names.count("AgentOffline") == 1  # "Hot" was inhibited
        wait_for(lambda: len(recorder.requests("/hook")) >= 2, what="firing and resolved notifications")
        offline = [json.loads(r.body) for r in recorder.requests("/hook")]
        offline = [h["status"] for h in offline if h["commonLabels"].get("alertname") == "AgentOffline"]
        assert offline == ["firing", "resolved"]
    finally:
        agent.stop()
        hub.stop()


def test_a_real_alertmanager_receives_the_hubs_firing_and_resolved_alerts(
    tmp_path: Path, recorder: Recorder
) -> None:
    am = start_alertmanager(tmp_path / "am", recorder.url("/am-hook"))
    hub = _hub(
        tmp_path,
        recorder,
        [{"name": "am", "kind": "alertmanager", "url": f"http://127.0.0.1:{am.port}", "backoff_base_s": 0.1}],
    )
    api = Api(hub)
    try:
        api.post(
            "/api/v1/alerts",
            [
                {
                    "labels": {"alertname": "PsuFailed", "site": "dc1", "device": "bmc7"},
                    "annotations": {"summary": "PSU 2 lost input"},
                }
            ],
            expect=202,
        )
        am_api = httpx.Client(base_url=f"http://127.0.0.1:{am.port}", timeout=5)
        (got,) = wait_for(lambda: am_api.get("/api/v2/alerts").json(), what="the alert in Alertmanager")
        assert got["labels"]["alertname"] == "PsuFailed" and got["status"]["state"] == "active"
        (a,) = api.get("/api/v1/alerts")["alerts"]
        api.post(f"/api/v1/alerts/{a['id']}/resolve")
        wait_for(
            lambda: (
                [x for x in am_api.get("/api/v2/alerts").json() if x["status"]["state"] == "active"] == []
            ),
            what="the alert resolved in Alertmanager",
        )
        hooks = wait_for(
            lambda: (
                [json.loads(r.body)["status"] for r in recorder.requests("/am-hook")][-1:] == ["resolved"]
                and recorder.requests("/am-hook")
            ),
            what="Alertmanager's own resolved notification",
        )
        assert json.loads(hooks[0].body)["status"] == "firing"
    finally:
        hub.stop()
        am.stop()
