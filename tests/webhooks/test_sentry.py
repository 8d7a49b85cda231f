"""Sentry integration webhooks into a running hub: signed issues become alerts, Sentry's resolve
resolves them, and unsigned, stale or replayed deliveries are refused and counted."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ingest.webhooks import sentry
from tests.support.outpost import HubHandle, wait_for
from tests.webhooks.conftest import SENTRY_SECRET

_ids = itertools.count(1)


def deliver(
    hub: HubHandle,
    resource: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = SENTRY_SECRET,
    timestamp: float | None = None,
    request_id: str | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "Sentry-Hook-Resource": resource,
        "Sentry-Hook-Timestamp": str(int(timestamp if timestamp is not None else time.time())),
        "Sentry-Hook-Signature": signature,
        "Request-ID": request_id or f"req-{next(_ids)}-{time.time_ns()}",
    }
    return httpx.post(f"{hub.api_url}/webhooks/sentry", content=body, headers=headers)


def issue(action: str, ident: str, level: str = "error") -> dict[str, Any]:
    """An issue webhook as Sentry's integration platform sends it (the fields the hub reads, and more)."""
    return {
        "action": action,
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        "data": {
            "issue": {
                "id": ident,
                "shortId": "BACKEND-1G",
                "title": "ZeroDivisionError: division by zero",
                "culprit": "api.views in compute",
                "level": level,
                "status": "resolved" if action == "resolved" else "unresolved",
                "project": {"id": "2", "name": "backend", "slug": "backend"},
                "web_url": f"https://sentry.example/organizations/acme/issues/{ident}/",
            }
        },
        "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
    }


def alerts_by_fingerprint(hub: HubHandle, fingerprint: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        a for a in hub.get("/api/v1/alerts", limit=1000)["alerts"] if a["fingerprint"] == fingerprint
    ]
    return found


@pytest.mark.integration
def test_a_sentry_issue_fires_an_alert_and_sentrys_resolve_resolves_it(hub: HubHandle) -> None:
    assert deliver(hub, "issue", issue("created", "1170820242")).status_code == 204
    (alert,) = wait_for(lambda: alerts_by_fingerprint(hub, "sentry:1170820242"), what="the Sentry alert")
    assert alert["status"] == "firing" and alert["severity"] == "critical"
    assert alert["labels"] == {"alertname": "SentryIssue", "sentry_issue": "1170820242", "project": "backend"}
    assert alert["annotations"]["summary"] == "ZeroDivisionError: division by zero"
    assert alert["links"] == [
        {"kind": "sentry", "ref": "https://sentry.example/organizations/acme/issues/1170820242/"}
    ]
    # An event alert about the same issue lands on the same alert.
    event = {
        "action": "triggered",
        "data": {"event": {"issue_id": "1170820242", "level": "error", "title": "x"}},
    }
    assert deliver(hub, "event_alert", event).status_code == 204
    assert deliver(hub, "issue", issue("resolved", "1170820242")).status_code == 204
    resolved = wait_for(
        lambda: [a for a in alerts_by_fingerprint(hub, "sentry:1170820242") if a["status"] == "resolved"],
        what="the Sentry alert resolved",
    )
    assert len(resolved) == 1 and len(alerts_by_fingerprint(hub, "sentry:1170820242")) == 1


@pytest.mark.integration
def test_metric_alerts_fire_and_resolve_by_their_rule_id(hub: HubHandle) -> None:
    critical = {"action": "critical", "data": {"metric_alert": {"id": "77"}, "description_title": "p95 > 2s"}}
    assert deliver(hub, "metric_alert", critical).status_code == 204
    (alert,) = wait_for(lambda: alerts_by_fingerprint(hub, "sentry-metric:77"), what="the metric alert")
    assert alert["severity"] == "critical" and alert["annotations"]["summary"] == "p95 > 2s"
    assert deliver(hub, "metric_alert", {**critical, "action": "resolved"}).status_code == 204
    wait_for(
        lambda: [a for a in alerts_by_fingerprint(hub, "sentry-metric:77") if a["status"] == "resolved"],
        what="the metric alert resolved",
    )


@pytest.mark.integration
def test_unsigned_stale_replayed_and_malformed_deliveries_are_refused_and_counted(hub: HubHandle) -> None:
    body = issue("created", "555")
    assert deliver(hub, "issue", body, secret="not the secret").status_code == 401
    assert deliver(hub, "issue", body, timestamp=time.time() - 3600).status_code == 401
    assert deliver(hub, "issue", body, request_id="once").status_code == 204
    assert deliver(hub, "issue", body, request_id="once").status_code == 401
    assert deliver(hub, "issue", b"{not json").status_code == 400
    assert deliver(hub, "issue", {"action": "created", "data": {"issue": {}}}).status_code == 400
    assert deliver(hub, "installation", {"action": "created"}).status_code == 204
    r = httpx.post(f"{hub.api_url}/webhooks/sentry", content=b"x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    big = b'{"a": "' + b"x" * 1_000_001 + b'"}'
    assert deliver(hub, "issue", big).status_code == 413
    metrics = httpx.get(f"{hub.api_url}/metrics").text
    for reason in (
        "bad_signature",
        "stale",
        "replayed",
        "invalid",
        "unsupported_media_type",
        "request_too_large",
    ):
        assert f'outpost_hub_ingest_rejected_total{{reason="{reason}",transport="sentry"}}' in metrics
    assert len(alerts_by_fingerprint(hub, "sentry:555")) == 1


@pytest.mark.unit
@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(sentry.RESOURCES | {"installation"})),
    st.one_of(
        st.binary(max_size=100),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
            ),
            max_leaves=12,
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_any_body_maps_or_raises_a_payload_error(resource: str, body: bytes) -> None:
    try:
        signal = sentry.signal(resource, body, 1, None)
    except sentry.SentryPayloadError:
        return
    assert signal is None or signal.fingerprint
