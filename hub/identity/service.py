"""Enrollment and renewal: checks a token (or the caller's certificate), signs the agent's CSR, audits.

Trust on the enrollment channel, kubeadm-style: `token create` prints a token `<id>.<secret>.<pin>`
where `<pin>` is the SHA-256 of the hub CA's certificate (DER). The agent fetches the CA certificate
over TLS it cannot verify yet, accepts it only if its hash equals the pin, and then enrolls over TLS
verified against that CA, sending `<id>.<secret>` and a CSR. A man in the middle can neither learn the
secret (it would fail verification) nor substitute a CA (the pin would not match). The agent's private key
never leaves it; the hub decides the identity (`<token site>/<agent name>`), whatever the CSR says.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.identity import pki
from hub.identity.db import EnrollState, TokenCheck
from shared import codec
from shared.clock import Clock, SystemClock
from shared.errors import OutpostError

# Names become NATS subject tokens and SAN URI path parts, so they are kept to a safe alphabet.
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class EnrollRefused(OutpostError):
    """Raised when an enrollment or renewal is refused; `reason` is what the audit log and the agent see."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new enrollment token. `token` is shown once; the hub keeps only its secret's hash."""

    token: str
    token_id: str
    site: str
    expires_ms: int
    uses: int


def ca_pin(ca_pem: bytes) -> str:
    """SHA-256 (hex) of the CA certificate's DER encoding: what agents compare the fetched CA against."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class EnrollService:
    """Blocking methods (SQL and signing); the servers call them from worker threads."""

    def __init__(
        self, ca: pki.CaPaths, state: EnrollState, cert_days: float, clock: Clock | None = None
    ) -> None:
        self._ca = ca
        self._state = state
        self._days = cert_days
        self._clock = clock or SystemClock()

    def create_token(self, site: str, ttl_s: float, uses: int) -> IssuedToken:
        """Makes a token for `site`, valid `ttl_s` seconds for `uses` enrollments.

        Raises:
            ValueError: a site name outside [A-Za-z0-9_-], a non-positive ttl or use count.
        """
        if not NAME.match(site) or ttl_s <= 0 or uses < 1:
            raise ValueError("site must match [A-Za-z0-9_-]{1,64}; ttl and uses must be positive")
        token_id, secret = secrets.token_hex(4), secrets.token_urlsafe(24)
        now = self._clock.now_ms()
        self._state.add_token(token_id, secret, site, now, int(ttl_s * 1000), uses)
        pin = ca_pin(self._ca.cert.read_bytes())
        return IssuedToken(f"{token_id}.{secret}.{pin}", token_id, site, now + int(ttl_s * 1000), uses)

    def enroll(self, req: codec.EnrollRequest, peer: str) -> codec.EnrollResponse:
        """Checks the token, then signs the CSR. Every attempt is audited.

        Raises:
            EnrollRefused: malformed token, unknown/expired/used-up/revoked token, bad name or CSR,
                or an agent id that was revoked.
        """
        token_id, _, secret = req.token.partition(".")
        now = self._clock.now_ms()
        name = req.agent_name if NAME.match(req.agent_name) else "?"
        who = name  # the audit names the full identity once the token has told the site
        try:
            if not secret or name == "?":
                raise EnrollRefused("malformed_request")
            public_key = _csr_key(req.csr_der)
            # Revocation is checked inside the token transaction, before a use is taken from the token.
            verdict, site = self._state.consume_token(token_id, secret, now, agent_name=name)
            if verdict is TokenCheck.AGENT_REVOKED:
                who = f"{site}/{name}"
            if verdict is not TokenCheck.OK:
                raise EnrollRefused(verdict.value)
            identity = f"{site}/{name}"
            cert_pem = self._sign(public_key, site, name)
        except EnrollRefused as exc:
            self._state.record(now, "enroll", token_id[:32], who, peer, exc.reason)
            raise
        self._state.record(now, "enroll", token_id, identity, peer, TokenCheck.OK.value)
        return codec.EnrollResponse(cert_pem, self._ca.cert.read_bytes(), identity)

    def renew(self, identity: str, csr_der: bytes, peer: str) -> bytes:
        """Signs a fresh certificate for the caller's existing identity (from its valid client certificate).

        Raises:
            EnrollRefused: the agent is revoked, its identity is not `site/name`, or the CSR is bad.
        """
        now = self._clock.now_ms()
        try:
            site, _, name = identity.partition("/")
            if not (NAME.match(site) and NAME.match(name)):
                raise EnrollRefused("not_an_agent_identity")
            if identity in self._state.revoked():
                raise EnrollRefused("agent_revoked")
            cert_pem = self._sign(_csr_key(csr_der), site, name)
        except EnrollRefused as exc:
            self._state.record(now, "renew", "-", identity[:160], peer, exc.reason)
            raise
        self._state.record(now, "renew", "-", identity, peer, TokenCheck.OK.value)
        return cert_pem

    def _sign(self, public_key: ec.EllipticCurvePublicKey, site: str, name: str) -> bytes:
        cert_pem = pki.sign(self._ca, public_key, name, agent_uri=f"{site}/{name}", days=self._days)
        cert = x509.load_pem_x509_certificate(cert_pem)
        not_after = int(cert.not_valid_after_utc.replace(tzinfo=dt.UTC).timestamp() * 1000)
        self._state.add_certificate(
            format(cert.serial_number, "x"), f"{site}/{name}", self._clock.now_ms(), not_after
        )
        return cert_pem


def _csr_key(csr_der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        csr = x509.load_der_x509_csr(csr_der)
    except ValueError:
        raise EnrollRefused("bad_csr") from None
    key = csr.public_key()
    if not csr.is_signature_valid or not isinstance(key, ec.EllipticCurvePublicKey):
        raise EnrollRefused("bad_csr")
    return key
