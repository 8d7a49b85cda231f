"""Pure pieces of notify: config validation, value types, wire formats, error mapping helpers, registry."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from hub.http_client import parse_retry_after, safe_url, scrub
from hub.notify.alertmanager import postable_alert
from hub.notify.config import NotifyConfig
from hub.notify.metrics import NotifyCollector, NotifyStats
from hub.notify.model import AlertView, Notification, pairs, rfc3339
from hub.notify.registry import RECEIVERS, build_receiver
from hub.notify.webhook import payload, sign, verify_signature
from shared.config_errors import format_validation_error
from tests.notify.conftest import T0, alert, note

pytestmark = pytest.mark.unit


def _errors(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as exc:
        NotifyConfig.model_validate(data)
    return format_validation_error(exc.value)


def _wh(**extra: Any) -> dict[str, Any]:
    return {"kind": "webhook", "name": "pager", "url": "https://pager.example/hook", **extra}


@pytest.mark.parametrize(
    ("receiver", "expected"),
    [
        (
            {"kind": "sms", "name": "x", "url": "http://a"},
            "receivers -> 0: Input tag 'sms' found using 'kind'",
        ),
        ({"kind": "webhook", "name": "x"}, "receivers -> 0 -> webhook -> url: Field required"),
        (_wh(colour="red"), "receivers -> 0 -> webhook -> colour: Extra inputs are not permitted"),
        (
            _wh(url="https://u:pw@pager.example/h"),
            "receivers -> 0 -> webhook -> url: Value error, must not carry",
        ),
        (_wh(url="ftp://pager.example/h"), "receivers -> 0 -> webhook -> url: Value error, must be an http"),
        (_wh(headers={"Idempotency-Key": "x"}), "headers set by the receiver itself cannot be configured"),
        (_wh(secret="a", secret_file="/tmp/s"), "give secret or secret_file, not both"),
        (_wh(backoff_base_s=10, backoff_cap_s=1), "backoff_cap_s must be >= backoff_base_s"),
        (
            {"kind": "alertmanager", "name": "am", "url": "http://am:9093", "batch_size": 101},
            "receivers -> 0 -> alertmanager -> batch_size: Input should be less than or equal to 100",
        ),
        (
            {
                "kind": "alertmanager",
                "name": "am",
                "url": "http://am:9093",
                "bearer_token": "t",
                "basic_auth": {"username": "u", "password": "p"},
            },
            "give basic_auth or a bearer token, not both",
        ),
    ],
)
def test_a_bad_receiver_config_is_refused_with_the_field_path(
    receiver: dict[str, Any], expected: str
) -> None:
    assert expected in _errors({"receivers": [receiver]})


def test_receiver_names_must_be_unique() -> None:
    assert "receiver names must be unique: ['pager']" in _errors({"receivers": [_wh(), _wh()]})


def test_secrets_stay_out_of_reprs_and_validation_errors() -> None:
    cfg = NotifyConfig.model_validate(
        {"receivers": [_wh(secret="topsecret", headers={"X-Key": "hdrsecret"})]}
    )
    assert "topsecret" not in repr(cfg) and "hdrsecret" not in repr(cfg)
    text = _errors({"receivers": [_wh(secret="topsecret", timeout_s="topsecret")]})
    assert "topsecret" not in text
    assert text == (
        "receivers -> 0 -> webhook -> timeout_s: "
        "Input should be a valid number, unable to parse string as a number"
    )


def test_a_notifications_status_must_agree_with_its_alerts() -> None:
    firing, resolved = alert("A", "firing"), alert("B", "resolved")
    with pytest.raises(ValueError, match="resolved exactly when every alert is resolved"):
        Notification("n", "pager", "g", (), "resolved", (firing, resolved), T0)
    assert Notification.of("n", "pager", "g", {}, (firing, resolved), T0).status == "firing"
    assert Notification.of("n", "pager", "g", {}, (resolved,), T0).status == "resolved"
    with pytest.raises(ValueError, match="has no alerts"):
        Notification.of("n", "pager", "g", {}, (), T0)
    for bad_id in ("", "x" * 256, "a\x00b"):
        with pytest.raises(ValueError, match="id must be 1 to 255 characters, without NUL"):
            Notification.of(bad_id, "pager", "g", {}, (firing,), T0)


def test_labels_are_sorted_pairs_whatever_order_they_came_in() -> None:
    a = AlertView("a", "f", "firing", "warning", {"z": "1", "a": "2"}, {}, T0)  # type: ignore[arg-type]
    b = AlertView("a", "f", "firing", "warning", (("a", "2"), ("z", "1")), (), T0)
    assert a == b and hash(a) == hash(b)
    assert a.labels == (("a", "2"), ("z", "1"))
    assert a.routing_labels() == {"a": "2", "z": "1", "severity": "warning"}
    with pytest.raises(ValueError, match="alert status"):
        AlertView("a", "f", "ok", "", (), (), T0)  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "z", "é"]), st.sampled_from(["1", "2", ""]))))
def test_pairs_already_in_order_come_back_as_they_are_and_any_other_input_as_before(
    items: list[tuple[str, str]],
) -> None:
    def reference(values: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        out = tuple(sorted(values))
        if len({k for k, _ in out}) != len(out):
            raise ValueError("duplicate label names")
        return out

    for given_as in (items, tuple(items), tuple(sorted(items))):
        try:
            expected = reference(list(given_as))
        except ValueError:
            with pytest.raises(ValueError, match="duplicate label names"):
                pairs(given_as)
        else:
            assert pairs(given_as) == expected


def test_a_notification_round_trips_through_its_outbox_json_and_bad_payloads_are_refused() -> None:
    n = note(7, group="g", status="resolved")
    assert Notification.from_json(n.to_json()) == n
    with pytest.raises(ValueError, match="unknown notification payload version 2"):
        Notification.from_json(n.to_json().replace('"v":1', '"v":2'))
    with pytest.raises(ValueError, match="bad notification payload"):
        Notification.from_json('{"v": 1, "id": "x"}')
    with pytest.raises(ValueError, match="bad notification payload"):
        Notification.from_json("not json")


def test_webhook_payload_of_a_mixed_group_has_common_labels_and_end_times() -> None:
    n = Notification.of(
        "n1",
        "pager",
        "gk",
        {"alertname": "X"},
        (alert("X", "firing", device="a"), alert("X", "resolved", device="b")),
        T0,
    )
    body = payload(n)
    assert body["status"] == "firing"
    assert body["commonLabels"] == {"alertname": "X", "severity": "critical"}
    assert [a["endsAt"] for a in body["alerts"]] == ["0001-01-01T00:00:00Z", rfc3339(T0 + 60_000)]
    assert rfc3339(T0 + 250) == "2027-01-15T08:00:00.250Z"


def test_signature_is_hmac_sha256_over_timestamp_dot_body_and_rejects_tampering_and_replays() -> None:
    body, ts = b'{"a":1}', "1800000000"
    expected = "sha256=" + hmac.new(b"k", b"1800000000." + body, hashlib.sha256).hexdigest()
    assert sign(b"k", ts, body) == expected
    assert verify_signature(b"k", ts, body, expected, now_s=1_800_000_010)
    assert not verify_signature(b"k", ts, body + b" ", expected, now_s=1_800_000_010)
    assert not verify_signature(b"other", ts, body, expected, now_s=1_800_000_010)
    assert not verify_signature(b"k", ts, body, expected, now_s=1_800_001_000)  # stale: a replay
    assert not verify_signature(b"k", "soon", body, expected, now_s=1_800_000_010)


def test_alertmanager_alerts_end_on_resolve_and_ahead_by_four_resend_intervals_while_firing() -> None:
    firing, resolved = alert("X"), alert("Y", "resolved")
    assert postable_alert(firing, T0, 60)["endsAt"] == rfc3339(T0 + 240_000)
    assert "endsAt" not in postable_alert(firing, T0, None)
    assert postable_alert(resolved, T0, 60)["endsAt"] == rfc3339(T0 + 60_000)
    bare = AlertView("a", "f", "firing", "", {"alertname": "Z"}, {}, T0)  # type: ignore[arg-type]
    assert postable_alert(bare, T0, None) == {
        "labels": {"alertname": "Z"},
        "annotations": {},
        "startsAt": rfc3339(T0),
    }


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Thu, 01 Jan 2027 00:01:00 GMT", now_s=1_798_761_600.0) == 60.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_error_texts_lose_user_info_query_and_secrets() -> None:
    assert safe_url("https://u:p@h.example:8443/hook?token=abc") == "https://h.example:8443/hook"
    assert scrub("key=abc and abcdef", ["abc", "abcdef", ""]) == "key=<redacted> and <redacted>"


@pytest.mark.parametrize("kind", sorted(RECEIVERS))
async def test_every_receiver_kind_builds_from_config_and_closes_safely_without_start_and_twice(
    kind: str, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("from-a-file\n")
    extra = (
        {"secret_file": str(tmp_path / "secret")}
        if kind == "webhook"
        else {"bearer_token_file": str(tmp_path / "secret")}
    )
    cfg = NotifyConfig.model_validate(
        {"receivers": [{"kind": kind, "name": kind, "url": "http://127.0.0.1:9", **extra}]}
    )
    (rc,) = cfg.receivers
    assert NotifyConfig.model_validate(cfg.model_dump(mode="json")) == cfg  # config round-trip
    r = build_receiver(rc)
    assert type(r) is RECEIVERS[kind]
    await r.aclose()
    await r.aclose()
    await r.start()
    await r.start()
    await r.aclose()
    await r.aclose()


async def test_an_unreadable_secret_file_fails_start_naming_the_field_not_the_secret(tmp_path: Path) -> None:
    cfg = NotifyConfig.model_validate({"receivers": [_wh(secret_file=str(tmp_path / "missing"))]})
    r = build_receiver(cfg.receivers[0])
    with pytest.raises(Exception, match=r"receivers -> pager -> secret: cannot read .*missing: No such file"):
        await r.start()
    await r.aclose()


def test_the_collector_exports_counters_and_the_latency_histogram_at_scrape_time() -> None:
    stats = NotifyStats()
    registry = CollectorRegistry()
    registry.register(NotifyCollector(stats, lambda: 3))
    stats.sent("pager", 0.3)
    stats.sent("pager", 7.0)
    stats.retried("pager")
    stats.dead_lettered("pager", "deadline")
    stats.dropped("chat", "queue_full")
    text = generate_latest(registry).decode()
    for line in (
        'outpost_hub_notify_sent_total{receiver="pager"} 2.0',
        'outpost_hub_notify_retried_total{receiver="pager"} 1.0',
        'outpost_hub_notify_dead_lettered_total{reason="deadline",receiver="pager"} 1.0',
        'outpost_hub_notify_dropped_total{reason="queue_full",receiver="chat"} 1.0',
        'outpost_hub_notify_latency_seconds_bucket{le="0.25",receiver="pager"} 0.0',
        'outpost_hub_notify_latency_seconds_bucket{le="0.5",receiver="pager"} 1.0',
        'outpost_hub_notify_latency_seconds_bucket{le="+Inf",receiver="pager"} 2.0',
        'outpost_hub_notify_latency_seconds_count{receiver="pager"} 2.0',
        'outpost_hub_notify_latency_seconds_sum{receiver="pager"} 7.3',
        "outpost_hub_notify_intake 3.0",
    ):
        assert line in text, line
