"""Redaction and answer validation of the LLM enrichment (hub.enrich.llm): no I/O."""

from __future__ import annotations

import pytest

from hub.enrich.llm.redact import Redactor
from hub.enrich.llm.schema import fallback, parse_answer
from hub.regex import RegexError

pytestmark = pytest.mark.unit

SECRETS = {
    "10.20.30.40": "<ipv4>",
    "fe80::1ff:fe23:4567:890a": "<ipv6>",
    "core-sw1.dc2.example.com": "<host>",
    "ops@example.org": "<email>",
    "00:1A:2B:3C:4D:5E": "<mac>",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl": "<jwt>",
    "sk-abcdefghijklmnopqrstuv": "<key>",
}


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_redactor_replaces_each_kind_with_its_placeholder(secret: str) -> None:
    out = Redactor.build()(f"link down on {secret} after flap")
    assert secret not in out
    assert SECRETS[secret] in out
    assert out.startswith("link down on ") and out.endswith(" after flap")


def test_redactor_hides_serials_tokens_and_extra_patterns() -> None:
    redact = Redactor.build(extra=[r"rack-\d+"])
    out = redact("PSU fail serial: FOX1234ABCD in rack-17, password=hunter2")
    assert "FOX1234ABCD" not in out and "hunter2" not in out and "rack-17" not in out
    assert "<redacted>" in out


def test_redactor_rejects_a_pattern_re2_cannot_run_in_linear_time() -> None:
    with pytest.raises(RegexError):
        Redactor.build(extra=[r"(a)\1"])


def test_parse_answer_accepts_a_fenced_object_and_rejects_garbage() -> None:
    ok = parse_answer(
        '```json\n{"summary": "s", "probable_cause": "c", "suggested_actions": ["a"], "confidence": 0.7}\n```'
    )
    assert ok is not None and ok.confidence == 0.7 and ok.suggested_actions == ("a",) and not ok.fallback
    assert parse_answer("not json") is None
    assert (
        parse_answer('{"summary": "s", "probable_cause": "c", "suggested_actions": [], "confidence": 2}')
        is None
    )
    assert (
        parse_answer(
            '{"summary": "s", "probable_cause": "", "suggested_actions": [], "confidence": 1,'
            ' "fallback": false}'
        )
        is None
    )


def test_fallback_is_deterministic_and_marked() -> None:
    lines = [f"alert {i}" for i in range(7)]
    a, b = fallback("Disk full", lines), fallback("Disk full", lines)
    assert a == b and a.fallback and a.confidence == 0.0
    assert a.summary == "Disk full: 7 alert(s): alert 0; alert 1; alert 2; alert 3; alert 4 (+2 more)"
