"""Generic signed webhooks into a running hub: sources made through the API, deliveries signed with either
active secret, Alertmanager's and Grafana's real payloads raising and resolving alerts, mapped metrics
read back, and every refusal answered and counted."""

from __future__ import annotations

import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ingest.webhooks import signature
from tests.support.outpost import HubHandle, wait_for
from tests.webhooks.conftest import GENERIC_BURST, points

PAYLOADS = Path(__file__).parent / "payloads"
_names = itertools.count(1)


def admin(hub: HubHandle) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.token}"}


def make_source(hub: HubHandle, **fields: Any) -> dict[str, Any]:
    """Creates a source (a fresh id unless given) as the admin; the answer holds its secret."""
    body = {"id": f"src-{next(_names)}-{time.time_ns() % 10**9}", "name": "a test source", **fields}
    r = httpx.post(f"{hub.api_url}/api/v1/webhook-sources", json=body, headers=admin(hub))
    assert r.status_code == 201, r.text
    source: dict[str, Any] = r.json()
    return source


def deliver(
    hub: HubHandle,
    source: dict[str, Any],
    payload: Any,
    secret: str | None = None,
    *,
    timestamp: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POSTs `payload` signed the way the source's scheme says, with `secret` (default: its first)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    scheme = signature.Scheme.from_settings(source["signature"])
    sent = {"Content-Type": "application/json"}
    if scheme.timestamp_header:
        timestamp = timestamp if timestamp is not None else str(int(time.time()))
        sent[scheme.timestamp_header] = timestamp
    sent[scheme.header] = signature.sign(scheme, secret or source["secret"], body, timestamp)
    sent.update(headers or {})
    return httpx.post(f"{hub.api_url}/webhooks/generic/{source['id']}", content=body, headers=sent)


def alerts_of(hub: HubHandle, source_id: str) -> dict[str, dict[str, Any]]:
    """The source's alerts by fingerprint."""
    alerts = hub.get("/api/v1/alerts", limit=1000)["alerts"]
    return {a["fingerprint"]: a for a in alerts if a["labels"].get("webhook_source") == source_id}


def rejected(hub: HubHandle, reason: str) -> float:
    return counter(hub, f'outpost_hub_ingest_rejected_total{{reason="{reason}",transport="generic"}}')


def counter(hub: HubHandle, series: str) -> float:
    """A sample of the hub's /metrics (0 before the series first appears)."""
    line = series + " "
    for row in httpx.get(f"{hub.api_url}/metrics").text.splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


def simple_alert(title: str = "disk full", status: str = "firing", ident: str = "a1") -> dict[str, Any]:
    return {"event": {"title": title, "state": status, "id": ident, "host": "db-1"}}


SIMPLE_MAPPING = {
    "fields": {
        "title": "event.title",
        "status": "event.state",
        "fingerprint": "event.id",
        "labels": "{host: event.host}",
    }
}


@pytest.mark.integration
def test_alertmanager_preset_fires_one_alert_per_entry_and_its_resolve_resolves_them(hub: HubHandle) -> None:
    # Alertmanager cannot sign: it sends `http_config.authorization` credentials, the token mode.
    source = make_source(
        hub,
        preset="alertmanager",
        signature={"header": "Authorization", "mode": "token", "prefix": "Bearer "},
    )
    firing = json.loads((PAYLOADS / "alertmanager_firing.json").read_text())
    r = deliver(hub, source, firing)
    assert r.status_code == 204, r.text
    prefix = f"generic:{source['id']}:"
    alerts = wait_for(lambda: len(alerts_of(hub, source["id"])) == 2 and alerts_of(hub, source["id"]))
    disk = alerts[prefix + "3d4c3ea2d8f1e0b7"]
    assert disk["status"] == "firing" and disk["severity"] == "critical"
    assert (
        disk["labels"]["mountpoint"] == "/"
        and disk["labels"]["alertname"] == "NodeFilesystemAlmostOutOfSpace"
    )
    assert disk["annotations"]["summary"] == "Filesystem has less than 5% space left."
    assert alerts[prefix + "fbab788ec4c1018b"]["severity"] == "warning"

    resolved = json.loads(json.dumps(firing).replace('"firing"', '"resolved"'))
    for alert in resolved["alerts"]:
        alert["endsAt"] = "2022-07-29T11:20:27.3Z"
    assert deliver(hub, source, resolved).status_code == 204
    wait_for(
        lambda: {a["status"] for a in alerts_of(hub, source["id"]).values()} == {"resolved"},
        what="both alerts resolved",
    )


@pytest.mark.integration
def test_grafana_preset_with_its_signed_timestamp_fires_and_resolves(hub: HubHandle) -> None:
    # Grafana's HMAC option: hex HMAC-SHA256 of "{timestamp}:{body}" in X-Grafana-Alerting-Signature.
    source = make_source(
        hub,
        preset="grafana",
        signature={
            "header": "X-Grafana-Alerting-Signature",
            "timestamp_header": "X-Grafana-Alerting-Signature-Timestamp",
            "signed": "{timestamp}:{body}",
        },
    )
    firing = json.loads((PAYLOADS / "grafana_firing.json").read_text())
    r = deliver(hub, source, firing)
    assert r.status_code == 204, r.text
    fingerprint = f"generic:{source['id']}:fac0861a85de433a"
    alert = wait_for(lambda: alerts_of(hub, source["id"]).get(fingerprint))
    assert alert["status"] == "firing" and alert["labels"]["lbl1"] == "val1"
    assert alert["annotations"]["summary"] == "High CPU on web-1"
    assert "value=97.5" in alert["annotations"]["description"]  # valueString, as no description is set

    resolved = json.loads(json.dumps(firing).replace('"firing"', '"resolved"'))
    assert deliver(hub, source, resolved).status_code == 204
    wait_for(lambda: alerts_of(hub, source["id"])[fingerprint]["status"] == "resolved", what="resolved")


@pytest.mark.integration
def test_either_active_secret_verifies_and_a_retired_one_is_refused(hub: HubHandle) -> None:
    source = make_source(hub, mapping=SIMPLE_MAPPING, signature={"prefix": "sha256="})
    old = source["secret"]
    rotated = httpx.post(
        f"{hub.api_url}/api/v1/webhook-sources/{source['id']}/secrets", headers=admin(hub)
    ).json()
    new = rotated["secret"]
    assert new != old and [s["active"] for s in rotated["secrets"]] == [True, True]
    assert deliver(hub, source, simple_alert(ident="old"), old).status_code == 204
    assert deliver(hub, source, simple_alert(ident="new"), new).status_code == 204
    third = httpx.post(f"{hub.api_url}/api/v1/webhook-sources/{source['id']}/secrets", headers=admin(hub))
    assert third.status_code == 409  # two active at most

    before = rejected(hub, "bad_signature")
    r = httpx.delete(
        f"{hub.api_url}/api/v1/webhook-sources/{source['id']}/secrets/{source['secret_id']}",
        headers=admin(hub),
    )
    assert r.status_code == 200 and [s["active"] for s in r.json()["secrets"]] == [False, True]
    assert deliver(hub, source, simple_alert(ident="again"), old).status_code == 401
    assert deliver(hub, source, simple_alert(ident="again"), new).status_code == 204
    assert rejected(hub, "bad_signature") == before + 1
    last = httpx.delete(
        f"{hub.api_url}/api/v1/webhook-sources/{source['id']}/secrets/{rotated['secret_id']}",
        headers=admin(hub),
    )
    assert last.status_code == 409  # a source keeps one active secret
    wait_for(lambda: {"old", "new", "again"} <= {f.rsplit(":", 1)[1] for f in alerts_of(hub, source["id"])})


@pytest.mark.integration
def test_bad_stale_and_replayed_deliveries_are_refused_with_401_and_counted(hub: HubHandle) -> None:
    source = make_source(
        hub,
        mapping=SIMPLE_MAPPING,
        signature={
            "header": "X-Hub-Signature-512",
            "algorithm": "sha512",
            "encoding": "base64",
            "timestamp_header": "X-Timestamp",
            "signed": "{timestamp}.{body}",
            "window_s": 60,
            "replay_header": "X-Delivery",
        },
    )
    counts = {r: rejected(hub, r) for r in ("bad_signature", "stale", "replayed")}
    payload = simple_alert(ident="r1")
    assert (
        deliver(hub, source, payload, "whs_not-the-secret", headers={"X-Delivery": "d1"}).status_code == 401
    )
    stale = str(int(time.time()) - 120)
    assert deliver(hub, source, payload, timestamp=stale, headers={"X-Delivery": "d2"}).status_code == 401
    assert deliver(hub, source, payload).status_code == 401  # no delivery id
    assert deliver(hub, source, payload, headers={"X-Delivery": "d3"}).status_code == 204
    replay = deliver(hub, source, payload, headers={"X-Delivery": "d3"})
    assert replay.status_code == 401 and "delivered already" in replay.json()["detail"]
    assert rejected(hub, "bad_signature") == counts["bad_signature"] + 1
    assert rejected(hub, "stale") == counts["stale"] + 1
    assert rejected(hub, "replayed") == counts["replayed"] + 2
    assert "disk full" not in hub.service.log()  # refused bodies are counted, never logged


@pytest.mark.integration
def test_unknown_source_wrong_type_oversized_and_malformed_bodies_get_their_4xx(hub: HubHandle) -> None:
    source = make_source(hub, mapping=SIMPLE_MAPPING)
    url = f"{hub.api_url}/webhooks/generic"
    assert httpx.post(f"{url}/no-such-source", json={}).status_code == 404
    assert httpx.post(f"{url}/NOT a slug", json={}).status_code == 404
    assert (
        httpx.post(
            f"{url}/{source['id']}", content=b"x=1", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    big = httpx.post(
        f"{url}/{source['id']}",
        content=b"[" + b"1," * 60_000 + b"1]",
        headers={"Content-Type": "application/json"},
    )
    assert big.status_code == 413
    assert deliver(hub, source, b"{not json").status_code == 400
    nothing = deliver(hub, source, {"event": {"state": "firing"}})  # no title: no alert
    assert nothing.status_code == 400 and "no alert" in nothing.json()["detail"]


@pytest.mark.integration
def test_a_source_over_its_rate_is_answered_429_with_retry_after(hub: HubHandle) -> None:
    source = make_source(hub, mapping=SIMPLE_MAPPING)
    answers: list[int] = []
    with httpx.Client() as client:
        # until the first 429: the burst, plus what the bucket refilled meanwhile (1/s) on a slow machine
        for _ in range(GENERIC_BURST * 3):
            r = client.post(f"{hub.api_url}/webhooks/generic/{source['id']}", content=b"{}")
            answers.append(r.status_code)
            if r.status_code == 429:
                break
    assert answers[-1] == 429 and set(answers[:-1]) == {415}, answers  # limited before anything else
    assert len(answers) > GENERIC_BURST and int(r.headers["Retry-After"]) >= 1


@pytest.mark.integration
def test_mapped_metrics_are_stored_as_the_sources_series_and_read_back(hub: HubHandle) -> None:
    source = make_source(
        hub,
        kind="metrics",
        mapping={
            "fields": {
                "items": "readings",
                "metric": "join('_', ['sensor', kind])",
                "value": "value",
                "timestamp": "at",
                "labels": "{rack: rack, agent: 'someone-else'}",
            }
        },
    )
    now = int(time.time())
    payload = {
        "readings": [
            {"kind": "temp", "value": 21.5, "at": now - 20, "rack": "r1"},
            {"kind": "temp", "value": "22.25", "at": now - 10, "rack": "r1"},
            {"kind": "temp", "value": "n/a", "at": now - 5, "rack": "r1"},  # skipped: not a number
            {"kind": "humidity", "value": 40, "at": now - 10, "rack": "r1"},
        ]
    }
    assert deliver(hub, source, payload).status_code == 204
    agent = f"webhook:{source['id']}"
    temp = wait_for(lambda: points(hub, "sensor_temp", rack="r1").get(agent))
    assert temp == [[(now - 20) * 1000, 21.5], [(now - 10) * 1000, 22.25]]
    assert points(hub, "sensor_humidity", rack="r1") == {agent: [[(now - 10) * 1000, 40.0]]}


@pytest.mark.integration
def test_the_test_endpoint_shows_the_normalized_result_and_stores_nothing(hub: HubHandle) -> None:
    source = make_source(hub, preset="alertmanager")
    payload = json.loads((PAYLOADS / "alertmanager_firing.json").read_text())
    url = f"{hub.api_url}/webhooks/generic/{source['id']}/test"
    assert httpx.post(url, json=payload).status_code == 401  # an admin's tool, not the sender's
    r = httpx.post(url, json=payload, headers=admin(hub))
    assert r.status_code == 200, r.text
    alerts = r.json()["alerts"]
    assert [a["fingerprint"] for a in alerts] == [
        f"generic:{source['id']}:fbab788ec4c1018b",
        f"generic:{source['id']}:3d4c3ea2d8f1e0b7",
    ]
    assert alerts[0]["firing"] and alerts[0]["ts_ms"] == 1659093207300
    assert httpx.post(url, json={"alerts": []}, headers=admin(hub)).status_code == 400
    time.sleep(0.5)
    assert alerts_of(hub, source["id"]) == {}


@pytest.mark.integration
def test_the_api_shows_a_secret_once_and_never_again(hub: HubHandle) -> None:
    source = make_source(hub, mapping=SIMPLE_MAPPING)
    secret = source["secret"]
    assert secret.startswith("whs_") and source["secrets"][0]["hint"] == "..." + secret[-4:]
    base = f"{hub.api_url}/api/v1/webhook-sources"
    answers = [
        httpx.get(base, headers=admin(hub)).text,
        httpx.get(f"{base}/{source['id']}", headers=admin(hub)).text,
        httpx.patch(f"{base}/{source['id']}", json={"name": "renamed"}, headers=admin(hub)).text,
        httpx.get(f"{hub.api_url}/api/v1/audit", params={"limit": 1000}, headers=admin(hub)).text,
    ]
    assert json.loads(answers[2])["name"] == "renamed"
    assert f"webhook_source:{source['id']}" in answers[3]  # the changes are audited...
    for text in answers:
        assert secret not in text and secret[4:20] not in text  # ...without the secret
    assert deliver(hub, source, simple_alert()).status_code == 204
    assert httpx.delete(f"{base}/{source['id']}", headers=admin(hub)).status_code == 200
    assert deliver(hub, source, simple_alert()).status_code == 404  # a deleted source takes nothing


@pytest.mark.integration
def test_a_bad_jmespath_expression_is_a_400_naming_the_field(hub: HubHandle) -> None:
    base = f"{hub.api_url}/api/v1/webhook-sources"
    bad = {"id": "bad-expr", "name": "x", "mapping": {"fields": {"title": "alerts[?", "status": "status"}}}
    r = httpx.post(base, json=bad, headers=admin(hub))
    assert r.status_code == 400 and r.json()["detail"]["path"] == "mapping.fields.title"
    missing = httpx.post(base, json={"id": "no-title", "name": "x"}, headers=admin(hub))
    assert missing.status_code == 400 and missing.json()["detail"]["path"] == "mapping.fields.title"
    preset = httpx.post(
        base, json={"id": "m", "name": "x", "kind": "metrics", "preset": "grafana"}, headers=admin(hub)
    )
    assert preset.status_code == 400 and preset.json()["detail"]["path"] == "preset"
    source = make_source(hub, mapping=SIMPLE_MAPPING)
    patch = httpx.patch(
        f"{base}/{source['id']}",
        json={"mapping": {"fields": {"title": "a.b", "labels": "{"}}},
        headers=admin(hub),
    )
    assert patch.status_code == 400 and patch.json()["detail"]["path"] == "mapping.fields.labels"
    assert httpx.get(f"{base}/bad-expr", headers=admin(hub)).status_code == 404
    operator = httpx.post(
        f"{hub.api_url}/api/v1/keys", json={"name": "op-sources", "role": "operator"}, headers=admin(hub)
    ).json()["secret"]
    assert httpx.get(base, headers={"Authorization": f"Bearer {operator}"}).status_code == 403


@pytest.mark.integration
def test_many_senders_at_once_each_delivery_counted_once(hub: HubHandle) -> None:
    source = make_source(hub, mapping=SIMPLE_MAPPING, signature={"replay_header": "X-Delivery"})
    deliveries = GENERIC_BURST // 2 - 2  # and as many replays, all inside the source's burst
    taken = 'outpost_hub_webhook_deliveries_total{transport="generic"}'
    signals = 'outpost_hub_webhook_signals_total{transport="generic"}'
    before = counter(hub, taken), counter(hub, signals), rejected(hub, "replayed")

    def send(n: int) -> int:
        payload = simple_alert(title=f"alert {n}", ident=f"c{n}")
        return deliver(hub, source, payload, headers={"X-Delivery": f"d{n}"}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, range(deliveries)))
        replays = list(pool.map(send, range(deliveries)))
    assert codes == [204] * deliveries and replays == [401] * deliveries
    alerts = wait_for(
        lambda: len(alerts_of(hub, source["id"])) == deliveries and alerts_of(hub, source["id"])
    )
    assert {a["annotations"]["summary"] for a in alerts.values()} == {f"alert {n}" for n in range(deliveries)}
    assert all(a["count"] == 1 for a in alerts.values())
    after = counter(hub, taken), counter(hub, signals), rejected(hub, "replayed")
    assert after == (before[0] + deliveries, before[1] + deliveries, before[2] + deliveries)


json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["alerts", "status", "labels", "a"]) | st.text(max_size=8), inner, max_size=4
        )
    ),
    max_leaves=25,
)


@pytest.mark.integration
@settings(max_examples=20, deadline=None)
@given(payload=json_docs | st.binary(max_size=100))
def test_fuzzed_payloads_to_the_receiver_and_the_test_endpoint_never_get_a_server_error(
    hub: HubHandle, payload: Any
) -> None:
    source = fuzz_source(hub)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    tried = httpx.post(
        f"{hub.api_url}/webhooks/generic/{source['id']}/test",
        content=body,
        headers={**admin(hub), "Content-Type": "application/json"},
    )
    assert tried.status_code in (200, 400), tried.text
    assert deliver(hub, source, body).status_code in (204, 400, 429)


_fuzz_sources: dict[str, dict[str, Any]] = {}


def fuzz_source(hub: HubHandle) -> dict[str, Any]:
    """One Alertmanager-preset source for every fuzzed example (per hub)."""
    if hub.api_url not in _fuzz_sources:
        _fuzz_sources[hub.api_url] = make_source(hub, preset="alertmanager")
    return _fuzz_sources[hub.api_url]
