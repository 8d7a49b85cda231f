"""The generic webhook's parsers alone: signature schemes (HMAC variants and the token mode), mapping
compilation errors naming their field, the presets on real payloads, and fuzzing of the mapping path."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.ingest.webhooks import mapping, signature
from hub.ingest.webhooks.mapping import Kind, MappingError, PayloadError, compile_mapping

PAYLOADS = Path(__file__).parent / "payloads"
NOW_MS = 1_760_000_000_000
BODY = b'{"alerts": []}'


@pytest.mark.unit
@pytest.mark.parametrize(
    ("scheme", "prefix"),
    [
        # GitHub's scheme (X-Hub-Signature-256: sha256=<hex>), base64 SHA-512, SHA-1, Slack's signed time.
        (signature.Scheme("X-Hub-Signature-256", prefix="sha256="), "sha256="),
        (signature.Scheme("X-Sig", algorithm="sha512", encoding=signature.Encoding.BASE64), ""),
        (signature.Scheme("X-Sig", algorithm="sha1"), ""),
        (signature.Scheme("X-Sig", timestamp_header="X-Ts", signed="v0:{timestamp}:{body}"), ""),
    ],
)
def test_a_signature_verifies_with_its_secret_only(scheme: signature.Scheme, prefix: str) -> None:
    header = signature.sign(scheme, "s3cret", BODY, "1700000000")
    assert header.startswith(prefix)
    assert signature.verify(scheme, ["other", "s3cret"], BODY, header, "1700000000")
    assert not signature.verify(scheme, ["other"], BODY, header, "1700000000")
    assert not signature.verify(scheme, ["s3cret"], BODY + b" ", header, "1700000000")
    assert not signature.verify(scheme, ["s3cret"], BODY, header[:-2], "1700000000")
    assert not signature.verify(scheme, ["s3cret"], BODY, "", "1700000000")


@pytest.mark.unit
def test_the_signed_timestamp_is_bound_to_the_body() -> None:
    scheme = signature.Scheme("X-Sig", timestamp_header="X-Ts", signed="{timestamp}:{body}")
    header = signature.sign(scheme, "k", BODY, "1700000000")
    assert signature.verify(scheme, ["k"], BODY, header, "1700000000")
    assert not signature.verify(scheme, ["k"], BODY, header, "1700000001")


@pytest.mark.unit
def test_the_known_hmac_sha256_of_a_body_is_accepted_in_upper_case_hex() -> None:
    # HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), the Wikipedia test vector.
    digest = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    scheme = signature.Scheme("X-Sig")
    body = b"The quick brown fox jumps over the lazy dog"
    assert signature.verify(scheme, ["key"], body, digest.upper(), None)


@pytest.mark.unit
def test_the_token_mode_compares_the_whole_credential() -> None:
    scheme = signature.Scheme("Authorization", mode=signature.Mode.TOKEN, prefix="Bearer ")
    assert signature.verify(scheme, ["whs_abc"], BODY, "Bearer whs_abc", None)
    assert not signature.verify(scheme, ["whs_abc"], BODY, "Bearer whs_ab", None)
    assert not signature.verify(scheme, ["whs_abc"], BODY, "whs_abc", None)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("1700000000", 1_700_000_000_000),
        ("1700000000.5", 1_700_000_000_500),
        ("1700000000123", 1_700_000_000_123),
    ],
)
def test_timestamps_are_seconds_or_milliseconds(value: str, ms: int) -> None:
    assert signature.timestamp_ms(value) == ms


@pytest.mark.unit
@pytest.mark.parametrize("value", ["", "soon", "nan", "inf", "-5", "1e20"])
def test_a_timestamp_that_is_no_time_is_refused(value: str) -> None:
    assert signature.timestamp_ms(value) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("fields", "preset", "kind", "path"),
    [
        ({"title": "alerts[?"}, None, Kind.ALERTS, "mapping.fields.title"),
        ({"title": "a", "labels": "{"}, None, Kind.ALERTS, "mapping.fields.labels"),
        ({"title": "a" * 600}, None, Kind.ALERTS, "mapping.fields.title"),
        ({"title": "a", "colour": "b"}, None, Kind.ALERTS, "mapping.fields.colour"),
        ({"metric": "m"}, None, Kind.METRICS, "mapping.fields.value"),
        ({}, None, Kind.ALERTS, "mapping.fields.title"),
        ({}, "grafana", Kind.METRICS, "preset"),
        ({}, "nagios", Kind.ALERTS, "preset"),
    ],
)
def test_a_bad_mapping_names_its_field(
    fields: dict[str, str], preset: str | None, kind: Kind, path: str
) -> None:
    with pytest.raises(MappingError) as err:
        compile_mapping(kind, preset, fields)
    assert err.value.path == path


@pytest.mark.unit
def test_the_alertmanager_preset_maps_every_entry_of_a_real_payload() -> None:
    doc = json.loads((PAYLOADS / "alertmanager_firing.json").read_text())
    signals = mapping.alerts_of(compile_mapping(Kind.ALERTS, "alertmanager", {}), "am", doc, NOW_MS)
    assert [s.fingerprint for s in signals] == ["generic:am:fbab788ec4c1018b", "generic:am:3d4c3ea2d8f1e0b7"]
    first = signals[0]
    assert first.firing and first.severity == "warning" and first.ts_ms == 1_659_093_207_300
    assert dict(first.labels)["webhook_source"] == "am" and dict(first.labels)["namespace"] == "prod"
    assert dict(first.annotations)["summary"] == "Deployment has not matched the expected number of replicas."


@pytest.mark.unit
def test_a_resolved_grafana_alert_ends_at_its_ends_at() -> None:
    doc = json.loads((PAYLOADS / "grafana_firing.json").read_text())
    doc["alerts"][0].update(status="resolved", endsAt="2024-03-05T09:51:10.123456789+01:00")
    (signal,) = mapping.alerts_of(compile_mapping(Kind.ALERTS, "grafana", {}), "g", doc, NOW_MS)
    assert not signal.firing and signal.ts_ms == 1_709_628_670_123


@pytest.mark.unit
def test_own_expressions_override_the_presets_and_unknown_severities_are_warnings() -> None:
    doc = json.loads((PAYLOADS / "grafana_firing.json").read_text())
    compiled = compile_mapping(Kind.ALERTS, "grafana", {"severity": "'P1'", "title": "labels.alertname"})
    (signal,) = mapping.alerts_of(compiled, "g", doc, NOW_MS)
    assert dict(signal.annotations)["summary"] == "alert1" and signal.severity == "warning"


@pytest.mark.unit
def test_points_of_one_series_are_sorted_and_a_repeated_time_keeps_the_last_value() -> None:
    compiled = compile_mapping(
        Kind.METRICS, None, {"items": "p", "metric": "'m'", "value": "v", "timestamp": "t", "labels": "l"}
    )
    doc = {
        "p": [
            {"v": 3, "t": 30},
            {"v": 1, "t": 10},
            {"v": 2, "t": 10},
            {"v": "x", "t": 5},
            {"v": 4, "t": 40, "l": 1},
        ]
    }
    (series,) = mapping.points_of(compiled, doc, NOW_MS)
    assert series.timestamps_ms.tolist() == [10_000, 30_000, 40_000] and series.values.tolist() == [
        2.0,
        3.0,
        4.0,
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
expressions = st.sampled_from(
    [
        "@",
        "a",
        "a.b",
        "a[0]",
        "a[*].b",
        "to_number(a)",
        "length(a)",
        "keys(@)",
        "sum(a)",
        "a || b",
        "{x: a}",
        "[a, b]",
    ]
)


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(
    doc=json_values, fields=st.dictionaries(st.sampled_from(mapping.ALERT_FIELDS), expressions, max_size=9)
)
def test_any_payload_and_alert_mapping_give_alerts_or_a_payload_error(
    doc: Any, fields: dict[str, str]
) -> None:
    compiled = compile_mapping(Kind.ALERTS, None, {"title": "a", **fields})
    try:
        signals = mapping.alerts_of(compiled, "fz", doc, NOW_MS)
    except PayloadError:
        return
    for s in signals:
        assert s.ts_ms <= NOW_MS and len(s.labels) <= mapping.MAX_LABELS + 2
        assert s.fingerprint is None or s.fingerprint.startswith("generic:fz:")


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(
    doc=json_values, fields=st.dictionaries(st.sampled_from(mapping.METRIC_FIELDS), expressions, max_size=5)
)
def test_any_payload_and_metric_mapping_give_finite_points_or_a_payload_error(
    doc: Any, fields: dict[str, str]
) -> None:
    compiled = compile_mapping(Kind.METRICS, None, {"metric": "'m'", "value": "a", **fields})
    try:
        series = mapping.points_of(compiled, doc, NOW_MS)
    except PayloadError:
        return
    for s in series:
        assert all(math.isfinite(v) for v in s.values) and all(s.timestamps_ms[1:] > s.timestamps_ms[:-1])


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_loads_or_is_a_payload_error(body: bytes) -> None:
    try:
        mapping.load(body)
    except PayloadError:
        pass
