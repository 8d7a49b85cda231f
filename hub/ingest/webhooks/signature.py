"""Signatures of generic webhooks, in the schemes senders use: a header holding the HMAC of the raw body
(GitHub's `X-Hub-Signature-256: sha256=<hex>`, Grafana's `X-Grafana-Alerting-Signature: <hex>`),
optionally with a timestamp header that is signed with the body (`{timestamp}:{body}` for Grafana,
`{timestamp}.{body}` for Stripe, `v0:{timestamp}:{body}` for Slack), or, for senders that cannot sign
(Alertmanager), the secret itself as a bearer token (`Authorization: Bearer <secret>`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hub.ingest.webhooks.mapping import MS_THRESHOLD

# hashlib names; sha1 only because older senders (GitHub's first header) still sign with it.
ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512, "sha1": hashlib.sha1}
MAX_SIGNATURE = 1024
MAX_TIMESTAMP = 32
BODY = "{body}"
TIMESTAMP = "{timestamp}"


class Mode(StrEnum):
    """What the signature header holds."""

    HMAC = "hmac"
    TOKEN = "token"  # prefix + the secret itself; only as safe as the TLS it travels over


class Encoding(StrEnum):
    """How the digest is written in the header."""

    HEX = "hex"
    BASE64 = "base64"


@dataclass(frozen=True, slots=True)
class Scheme:
    """How one source signs: where the signature is, how it is computed and written, and the timestamp.

    With `timestamp_header` set, a delivery must carry it (epoch seconds or milliseconds) within
    `window_s` of the hub's clock; `signed` is the string the HMAC is computed over, `{body}` last and
    optionally one `{timestamp}` before it.
    """

    header: str
    mode: Mode = Mode.HMAC
    algorithm: str = "sha256"
    prefix: str = ""
    encoding: Encoding = Encoding.HEX
    timestamp_header: str | None = None
    window_s: float = 300.0
    signed: str = BODY

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Scheme:
        """The scheme of a source's stored settings (validated when saved; other keys are ignored)."""
        return cls(
            header=str(settings["header"]),
            mode=Mode(settings.get("mode", Mode.HMAC)),
            algorithm=str(settings.get("algorithm", "sha256")),
            prefix=str(settings.get("prefix", "")),
            encoding=Encoding(settings.get("encoding", Encoding.HEX)),
            timestamp_header=settings.get("timestamp_header"),
            window_s=float(settings.get("window_s", 300.0)),
            signed=str(settings.get("signed", BODY)),
        )


def sign(scheme: Scheme, secret: str, body: bytes, timestamp: str | None = None) -> str:
    """The header value a sender holding `secret` puts on `body` (what `verify` expects)."""
    if scheme.mode is Mode.TOKEN:
        return scheme.prefix + secret
    lead = scheme.signed[: -len(BODY)].replace(TIMESTAMP, timestamp or "")
    signed = lead.encode() + body
    digest = hmac.new(secret.encode(), signed, ALGORITHMS[scheme.algorithm]).digest()
    text = digest.hex() if scheme.encoding is Encoding.HEX else base64.b64encode(digest).decode()
    return scheme.prefix + text


def valid_signed(template: str) -> bool:
    """Whether `template` can be a scheme's `signed`: `{body}` once and last, `{timestamp}` at most once."""
    return template.endswith(BODY) and template.count(BODY) == 1 and template.count(TIMESTAMP) <= 1


def verify(scheme: Scheme, secrets: Sequence[str], body: bytes, header: str, timestamp: str | None) -> bool:
    """True when `header` is the signature of `body` (and `timestamp` when signed) by any of `secrets`.

    Every secret is compared, in constant time, whatever the first one gave, so the answer's timing
    tells nothing about which secret (or how much of a signature) matched.
    """
    given = _digest(scheme, header.strip()[:MAX_SIGNATURE])
    if given is None:
        return False
    ok = False  # |= below, so every secret is compared
    for secret in secrets:
        expected = _digest(scheme, sign(scheme, secret, body, timestamp))
        ok |= expected is not None and hmac.compare_digest(expected, given)
    return ok


def timestamp_ms(value: str) -> int | None:
    """A timestamp header (epoch seconds, with or without a fraction, or milliseconds) in ms."""
    try:
        number = float(value.strip()[:MAX_TIMESTAMP])
    except ValueError:
        return None
    if not 0 < number < 1e15:  # also refuses nan and inf
        return None
    return int(number if number > MS_THRESHOLD else number * 1000)


def _digest(scheme: Scheme, text: str) -> bytes | None:
    """The raw digest a header value carries (prefix removed, hex case-insensitive); None if malformed."""
    if not text.startswith(scheme.prefix):
        return None
    text = text[len(scheme.prefix) :]
    if scheme.mode is Mode.TOKEN:
        return text.encode()
    try:
        if scheme.encoding is Encoding.HEX:
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None
